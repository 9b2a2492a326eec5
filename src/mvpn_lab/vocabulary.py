"""The lab's vocabulary: the words a test configuration and a handover are described with.

The same strings travel through the handover matrix (playbooks/vars/handover_matrix.yml),
the roles' argument specs, the daemon's YAML configuration, the run folder's JSON and the
analyser's summaries, so each word is a ``Literal`` (a plain ``str`` at run time) and its
allowed values are derived from that type once, here, for validation:

* :data:`Mip6Mode`: ``bt`` bidirectional tunnelling through the home agent, ``ro`` route
  optimisation with the correspondents;
* :data:`MovementDetection`: ``ra`` wait for an unsolicited Router Advertisement, ``l2`` act on
  link-up;
* :data:`IpsecMode`: ESP between correspondent and mobile node: ``none``, ``transport`` or
  ``tunnel`` mode;
* :data:`Direction`: a handover ``away`` from the home link or back ``home``.

The binding states of the daemon's core are enums in :mod:`mvpn_lab.mip6.core.binding`.
"""

from __future__ import annotations

from typing import Literal, TypeGuard, TypeVar, get_args

Mip6Mode = Literal["bt", "ro"]
MovementDetection = Literal["ra", "l2"]
IpsecMode = Literal["none", "transport", "tunnel"]
Direction = Literal["away", "home"]

MIP6_MODES: tuple[Mip6Mode, ...] = get_args(Mip6Mode)
MOVEMENT_DETECTIONS: tuple[MovementDetection, ...] = get_args(MovementDetection)
IPSEC_MODES: tuple[IpsecMode, ...] = get_args(IpsecMode)
DIRECTIONS: tuple[Direction, ...] = get_args(Direction)

_Word = TypeVar("_Word", bound=str)


def choose(value: object, choices: tuple[_Word, ...]) -> _Word | None:
    """The member of ``choices`` equal to ``value``, or None: narrows a string read from a file."""
    for choice in choices:
        if value == choice:
            return choice
    return None


def is_mip6_mode(value: object) -> TypeGuard[Mip6Mode]:
    return value in MIP6_MODES


def is_movement_detection(value: object) -> TypeGuard[MovementDetection]:
    return value in MOVEMENT_DETECTIONS


def is_ipsec_mode(value: object) -> TypeGuard[IpsecMode]:
    return value in IPSEC_MODES


def is_direction(value: object) -> TypeGuard[Direction]:
    return value in DIRECTIONS
