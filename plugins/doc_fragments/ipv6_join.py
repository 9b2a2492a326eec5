# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options shared by the filters mvpn.lab.ipv6_address and mvpn.lab.ipv6_host (plugins/filter/topology.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  _input:
    description:
      - The IPv6 prefix, an address and a prefix length with no host bits set, for example
        C(fec0:106:2700::/64).
    type: str
    required: true
  iid:
    description:
      - The interface identifier, written as an IPv6 address, for example C(::1) or
        C(::20c:30ff:febb:f0b6). It must fit in the host part of O(_input).
    type: str
    required: true
  field:
    description: The name of the value in error messages, for example C(mvpn_mn_token).
    type: str
    default: address
requirements:
  - netaddr (Python package, on the controller)
"""
