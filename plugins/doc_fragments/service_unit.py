# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options shared by the filters mvpn.lab.unit_name and mvpn.lab.unit_file (plugins/filter/topology.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  _input:
    description: The lab service, for example C(radvd), C(hostapd) or C(mip6).
    type: str
    required: true
  netns:
    description:
      - The network namespace the service runs in, on the virtual twin (the role's C(*_netns), from
        C(mvpn_netns)); empty on hardware.
    type: str
    default: ""
"""
