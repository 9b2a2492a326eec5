# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Strategy plugin mvpn.lab.mitogen_linear: Ansible's linear strategy run through Mitogen.

The plugin itself holds no logic: it combines Mitogen's strategy mix-in (Python package
``mitogen``, module ``ansible_mitogen``) with ansible-core's ``linear`` strategy, as Mitogen's own
``mitogen_linear`` does. Shipping it in the collection lets ansible.cfg name it by FQCN, so
nothing has to point Ansible at a Python-version-specific site-packages folder.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: mitogen_linear
short_description: Ansible's linear strategy on Mitogen's persistent remote interpreters
version_added: 0.1.0
description:
  - Runs plays as ansible-core's C(linear) strategy does (each task on every host before the
    next task), but connects and runs modules through Mitogen for Ansible, with one persistent Python
    interpreter per host and connection, started once over SSH, instead of a new SSH command and a
    new interpreter (with the module's imports) for every task.
  - The project's default strategy (C(ansible.cfg) and the molecule scenarios). Switch it off with
    the environment variable E(ANSIBLE_STRATEGY=linear).
  - Needs the Python package C(mitogen) on the controller (pinned in the project's
    C(requirements.txt), installed by C(scripts/setup.sh)); the lab hosts need nothing beyond Python.
author:
  - mvpn-lab developers (@mvpn-lab)
notes:
  - Connection plugins C(ssh) and C(local) are replaced by Mitogen's own for the duration of the
    play; C(raw), C(delegate_to), C(run_once), C(async), C(become) and C(ignore_unreachable) keep
    their meaning.
seealso:
  - name: Mitogen for Ansible
    description: How Mitogen runs Ansible's tasks, its options and its limits.
    link: https://mitogen.networkgenomics.com/ansible_detailed.html
"""

from typing import Any

from ansible.errors import AnsibleError
from ansible.plugins.loader import strategy_loader

MITOGEN_IMPORT_ERROR: ImportError | None
try:
    import ansible_mitogen.strategy
except ImportError as exc:
    MITOGEN_IMPORT_ERROR = exc
else:
    MITOGEN_IMPORT_ERROR = None


class _RefuseWithoutMitogen:
    """Stand-in for Mitogen's mix-in when it is missing: refuses to run, with one line naming the fix."""

    def __init__(self, *args, **kwargs):
        raise AnsibleError(
            "strategy mvpn.lab.mitogen_linear: the Python package mitogen is not installed "
            "(%s); run scripts/setup.sh, or set ANSIBLE_STRATEGY=linear to run without it"
            % MITOGEN_IMPORT_ERROR
        )


# the class ansible-core's own "linear" name loads, so nothing of it is loaded twice
Linear: Any = strategy_loader.get("ansible.builtin.linear", class_only=True)
Mixin: Any = _RefuseWithoutMitogen if MITOGEN_IMPORT_ERROR else ansible_mitogen.strategy.StrategyMixin


class StrategyModule(Mixin, Linear):
    """Mitogen's mix-in on ansible-core's linear strategy."""
