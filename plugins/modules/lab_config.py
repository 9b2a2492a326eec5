#!/usr/bin/python
# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: lab_config
short_description: A lab host's rendered configuration, as it is now, without secrets
description:
  - Reads what the lab's roles rendered for this node, every regular file in O(config_dir) (C(radvd.conf),
    C(hostapd.conf), C(wpa_supplicant.conf), the Mobile IPv6 daemon's C(mip6.yml), C(apache2.conf),
    C(topology.yml)...), and the kernel state the roles set (IPv6 addresses and routes, the xfrm
    states and policies, the queueing disciplines), and returns them as text, for the run folder
    (M(mvpn.lab.run_folder) with O(mvpn.lab.run_folder#module:state=configured)).
  - No key leaves the host. The xfrm states are listed with C(ip xfrm state list nokeys), so the
    kernel never prints their keys.
  - "In the files, the value of every entry whose name ends in C(key), C(keys), C(psk), C(passphrase),
    C(password), C(passwd), C(secret), C(cak) or C(ckn) (with a number after it, such as C(wep_key0)),
    and of C(r0kh)/C(r1kh), is replaced by C(<masked>): in C(name=value), C(name: value),
    C(- name: value) and C(\"name\": value) form, any case, with every line of a YAML block scalar
    (C(name: |)). Today the lab's WLANs are open and no role writes a key into these files; the
    masking is for the day one does."
  - Reads only; it never changes the host, so check mode returns the same.
version_added: 0.1.0
author:
  - mvpn-lab developers (@mvpn-lab)
options:
  config_dir:
    description:
      - The folder the roles render this node's configuration into (C(/etc/mvpn-lab/NODE)). Missing, it
        gives no files (a node no role configured).
    type: path
    required: true
  kernel:
    description: Also list the kernel state (addresses, routes, xfrm states and policies, qdiscs).
    type: bool
    default: true
  max_bytes:
    description: Files larger than this are left out, with a note (the lab's configurations are a few KiB).
    type: int
    default: 1048576
attributes:
  check_mode:
    support: full
    description: Reads only; check mode returns the same.
  diff_mode:
    support: none
    description: No diff is returned.
"""

EXAMPLES = r"""
- name: Read this node's rendered configuration
  mvpn.lab.lab_config:
    config_dir: "/etc/mvpn-lab/{{ mvpn_node }}"
  register: lab_config

- name: Keep it in the run folder, beside the repetitions of the configuration
  mvpn.lab.run_folder:
    state: configured
    path: "{{ run.path }}"
    configuration: ro-none-l2
    lab_configs: >-
      {{ dict(ansible_play_hosts | zip(ansible_play_hosts
              | map('extract', hostvars, ['lab_config', 'files']))) }}
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
files:
  description:
    - File name to content. The rendered files keep their names; the kernel state is in
      C(ip-addr.txt), C(ip-route.txt), C(xfrm-state.txt), C(xfrm-policy.txt) and C(qdisc.txt).
  returned: always
  type: dict
  sample:
    radvd.conf: "interface wlan1 { AdvSendAdvert on; ... };"
    xfrm-policy.txt: "src fec0:106:2700::/64 dst ::/0 ..."
skipped:
  description: Files left out, with the reason (too large, not readable, not text).
  returned: always
  type: list
  elements: str
  sample: ["big.bin: 2097152 bytes, more than max_bytes (1048576)"]
"""

import os
import re
import stat

from ansible.module_utils.basic import AnsibleModule

#: the kernel state the roles set, as (file name, argv); ``nokeys``: ip never prints the SAs' keys
KERNEL = (
    ("ip-addr.txt", ["ip", "-6", "addr", "show"]),
    ("ip-route.txt", ["ip", "-6", "route", "show", "table", "all"]),
    ("xfrm-state.txt", ["ip", "-6", "xfrm", "state", "list", "nokeys"]),
    ("xfrm-policy.txt", ["ip", "-6", "xfrm", "policy", "list"]),
    ("qdisc.txt", ["tc", "qdisc", "show"]),
)
#: an entry whose value is a secret, in the forms the roles' files take: ``name=value``
#: (hostapd, wpa_supplicant), ``name: value`` (YAML, also as a list item ``- name: value``) and
#: ``"name": value`` (JSON); a name that ends in key(s), psk, passphrase, password, passwd,
#: secret, cak or ckn (``wpa_psk``, ``wep_key0``, ``enc_key``, ``sae_password``,
#: ``auth_server_shared_secret``, ``mka_cak``), or 802.11r's ``r0kh``/``r1kh``; any case
_NAME = r"(?:[A-Za-z0-9_.-]*(?:keys?|psk|passphrase|password|passwd|secret|cak|ckn)[0-9]*|r[01]kh)"
SECRET = re.compile(
    r"^(?P<head>[ \t]*(?:-[ \t]+)?[\"']?" + _NAME + r"[\"']?[ \t]*[=:][ \t]*)(?P<value>\S.*)$",
    re.IGNORECASE,
)
#: the same inside a line of JSON or a YAML flow mapping: ``{"psk": "x", ...}``
INLINE = re.compile(
    r"(?P<head>[\"']" + _NAME + r"[\"'][ \t]*:[ \t]*)(?P<value>\"(?:[^\"\\]|\\.)*\"|'[^']*'|[^,}\]\s]+)",
    re.IGNORECASE,
)
#: a YAML block scalar's indicator: its value is on the following, more indented lines
BLOCK = re.compile(r"^[|>][-+0-9]*[ \t]*(?:#.*)?$")
MASK = "<masked>"


def mask_secrets(text):
    """``text`` with the value of every secret entry replaced by :data:`MASK` (and every line of a
    YAML block scalar that is one). Errs on the side of masking: a line that merely looks like a
    secret entry is masked too."""
    out, block_indent = [], None
    for line in text.splitlines(True):
        body = line.rstrip("\r\n")
        indent = len(body) - len(body.lstrip(" \t"))
        if block_indent is not None:
            if body.strip() and indent <= block_indent:
                block_indent = None
            else:
                out.append(body[:indent] + (MASK if body.strip() else "") + line[len(body) :])
                continue
        match = SECRET.match(body)
        if match:
            if BLOCK.match(match.group("value")):
                block_indent = indent
            else:
                line = match.group("head") + MASK + line[len(body) :]
        else:
            line = INLINE.sub(lambda m: m.group("head") + '"' + MASK + '"', line)
        out.append(line)
    return "".join(out)


def read_files(config_dir, max_bytes):
    """(name -> masked text, skipped notes) of the regular files directly in ``config_dir``;
    OSError when it exists but cannot be listed."""
    files, skipped = {}, []
    try:
        names = sorted(os.listdir(config_dir))
    except FileNotFoundError:
        return files, skipped
    for name in names:
        path = os.path.join(config_dir, name)
        try:
            info = os.lstat(path)
        except OSError as exc:
            skipped.append("%s: %s" % (name, exc.strerror))
            continue
        if not stat.S_ISREG(info.st_mode):
            continue  # folders, links, sockets, FIFOs: not a rendered file
        if info.st_size > max_bytes:
            skipped.append("%s: %d bytes, more than max_bytes (%d)" % (name, info.st_size, max_bytes))
            continue
        try:
            with open(path, "rb") as handle:
                data = handle.read(max_bytes + 1)
            text = data.decode("utf-8")
        except OSError as exc:
            skipped.append("%s: %s" % (name, exc.strerror))
            continue
        except UnicodeDecodeError:
            skipped.append("%s: not UTF-8 text" % name)
            continue
        files[name] = mask_secrets(text)
    return files, skipped


def main():
    module = AnsibleModule(
        argument_spec=dict(
            config_dir=dict(type="path", required=True),
            kernel=dict(type="bool", default=True),
            max_bytes=dict(type="int", default=1048576),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["max_bytes"] < 1:
        module.fail_json(msg="max_bytes: expected a number of bytes >= 1, got %d" % p["max_bytes"])
    try:
        files, skipped = read_files(p["config_dir"], p["max_bytes"])
    except OSError as exc:
        module.fail_json(msg="config_dir: cannot list %s: %s" % (p["config_dir"], exc.strerror or exc))
    if p["kernel"]:
        for name, argv in KERNEL:
            rc, out, err = module.run_command(argv)
            if rc != 0:  # tc or the xfrm family missing on a host: noted, the rest is still worth keeping
                skipped.append("%s: %s exited %d: %s" % (name, " ".join(argv), rc, " ".join(err.split())))
                continue
            files[name] = out
    module.exit_json(changed=False, files=files, skipped=skipped)


if __name__ == "__main__":
    main()
