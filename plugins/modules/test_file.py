#!/usr/bin/python
# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: test_file
short_description: Deterministic test files for the lab's downloads
description:
  - Writes a file of the given size whose content is a pure function of O(seed) and O(size),
    pseudo-random bytes with a readable O(marker) line every 64 KiB, so a capture shows at once
    whether a transfer crossed the network in clear.
  - Returns the file's sha256, which clients compare with what they downloaded.
  - A file that already has the expected content is left alone (the module reports no change).
version_added: 0.1.0
author:
  - mvpn-lab developers (@mvpn-lab)
options:
  path:
    description: Where to write the file.
    type: path
    required: true
  size:
    description: Size in bytes.
    type: int
    required: true
  seed:
    description: Seed of the content; the same seed and size give the same bytes everywhere.
    type: str
    default: mvpn-lab
  marker:
    description: Text inserted every 64 KiB (empty for none).
    type: str
    default: MVPN-LAB-CLEARTEXT-MARKER
  mode:
    description: File mode.
    type: str
    default: "0644"
attributes:
  check_mode:
    support: full
    description: Reports what would change and changes nothing.
  diff_mode:
    support: none
    description: No diff is returned.
"""

EXAMPLES = r"""
- name: A 1 MiB file for the download tests
  mvpn.lab.test_file:
    path: /var/lib/mvpn-lab/cn/www/files/test-1M.bin
    size: 1048576
  register: test_file
"""

RETURN = r"""
sha256:
  description: SHA-256 of the file's content.
  returned: always
  type: str
  sample: 6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b
size:
  description: Size in bytes.
  returned: always
  type: int
  sample: 1048576
"""

import hashlib
import os
import random
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mvpn.lab.plugins.module_utils.checksum import file_sha256

BLOCK = 65536


def blocks(seed, size, marker):
    """The file's content, a 64 KiB block at a time."""
    mark = ("\n%s\n" % marker).encode("utf-8") if marker else b""
    offset = 0
    index = 0
    while offset < size:
        n = min(BLOCK, size - offset)
        rng = random.Random("%s:%d" % (seed, index))
        data = mark + rng.getrandbits(8 * BLOCK).to_bytes(BLOCK, "little")
        yield data[:n]
        offset += n
        index += 1


def expected_sha256(seed, size, marker):
    digest = hashlib.sha256()
    for chunk in blocks(seed, size, marker):
        digest.update(chunk)
    return digest.hexdigest()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            size=dict(type="int", required=True),
            seed=dict(type="str", default="mvpn-lab"),
            marker=dict(type="str", default="MVPN-LAB-CLEARTEXT-MARKER"),
            mode=dict(type="str", default="0644"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["size"] < 0:
        module.fail_json(msg="size: expected a number of bytes >= 0, got %d" % p["size"])
    want = expected_sha256(p["seed"], p["size"], p["marker"])
    path = p["path"]
    changed = not (os.path.isfile(path) and os.path.getsize(path) == p["size"] and file_sha256(path) == want)
    if changed and not module.check_mode:
        directory = os.path.dirname(path) or "."
        if not os.path.isdir(directory):
            module.fail_json(msg="path: folder %s does not exist" % directory)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".test_file.")
        with os.fdopen(fd, "wb") as fh:
            for chunk in blocks(p["seed"], p["size"], p["marker"]):
                fh.write(chunk)
        os.rename(tmp, path)
    if not module.check_mode or not changed:
        changed = module.set_mode_if_different(path, p["mode"], changed)
    module.exit_json(changed=changed, sha256=want, size=p["size"], path=path)


if __name__ == "__main__":
    main()
