"""The vocabulary types name the same words as the handover matrix and the roles' argument specs."""

from __future__ import annotations

import enum
from pathlib import Path

import pytest
import yaml

from mvpn_lab.mip6.core.config import ConfigError, parse_config
from mvpn_lab.vocabulary import (
    DIRECTIONS,
    IPSEC_MODES,
    MIP6_MODES,
    MOVEMENT_DETECTIONS,
    choose,
    is_direction,
    is_ipsec_mode,
    is_mip6_mode,
    is_movement_detection,
)

ROOT = Path(__file__).resolve().parents[2]
MATRIX = yaml.safe_load((ROOT / "playbooks/vars/handover_matrix.yml").read_text())[
    "mvpn_handover_configurations"
]


def _choices(role: str, option: str) -> set[str]:
    spec = yaml.safe_load((ROOT / "roles" / role / "meta/argument_specs.yml").read_text())
    return {str(c) for c in spec["argument_specs"]["main"]["options"][option]["choices"]}


def test_the_value_tuples_are_the_literal_types_words() -> None:
    assert MIP6_MODES == ("bt", "ro")
    assert MOVEMENT_DETECTIONS == ("ra", "l2")
    assert IPSEC_MODES == ("none", "transport", "tunnel")
    assert DIRECTIONS == ("away", "home")


@pytest.mark.parametrize(
    ("field", "values"),
    [("mip6", MIP6_MODES), ("ipsec", IPSEC_MODES), ("movement_detection", MOVEMENT_DETECTIONS)],
)
def test_every_matrix_row_uses_the_vocabulary_and_the_matrix_covers_it(
    field: str, values: tuple[str, ...]
) -> None:
    used = [row[field] for row in MATRIX]
    assert set(used) <= set(values), f"{field}: {sorted(set(used) - set(values))} not in {values}"
    assert set(used) == set(values)  # the paper's matrix is the full product


@pytest.mark.parametrize(
    ("role", "option", "values"),
    [
        ("mip6", "mip6_mode", MIP6_MODES),
        ("mip6", "mip6_movement_detection", MOVEMENT_DETECTIONS),
        ("ipsec", "ipsec_mode", IPSEC_MODES),
    ],
)
def test_role_argument_spec_choices_are_the_vocabulary(
    role: str, option: str, values: tuple[str, ...]
) -> None:
    assert _choices(role, option) == set(values)


def test_narrowing_helpers_accept_members_only() -> None:
    assert choose("ro", MIP6_MODES) == "ro"
    assert choose("RO", MIP6_MODES) is None
    assert choose(None, IPSEC_MODES) is None
    assert is_mip6_mode("bt") and not is_mip6_mode("any")
    assert is_movement_detection("l2") and not is_movement_detection("l3")
    assert is_ipsec_mode("tunnel") and not is_ipsec_mode("beet")
    assert is_direction("home") and not is_direction("LOCAL")


@pytest.mark.parametrize(("field", "bad"), [("mode", "rr"), ("movement_detection", "l3")])
def test_the_daemon_config_names_the_vocabulary_in_its_error(field: str, bad: str) -> None:
    data = {"role": "mn", "home_address": "2001:db8:1::100", "home_agent": "2001:db8:1::1", field: bad}
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    words = MIP6_MODES if field == "mode" else MOVEMENT_DETECTIONS
    assert str(err.value) == f"config field '{field}': expected one of {', '.join(words)}, got {bad!r}"


def test_the_daemon_config_keeps_the_plain_word() -> None:
    cfg = parse_config(
        {"role": "mn", "home_address": "2001:db8:1::100", "home_agent": "2001:db8:1::1", "mode": "ro"}
    )
    assert cfg.mode == "ro" and isinstance(cfg.mode, str) and not isinstance(cfg.mode, enum.Enum)
    assert cfg.movement_detection == "ra"
