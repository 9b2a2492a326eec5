# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab's ESP cipher suites and its SAs' SPI numbering: the one table.

Read by the ``xfrm_state`` module (through ``module_utils.xfrm``: which key lengths an algorithm
takes), by the ``lab_model`` filter (the ipsec role's algorithm and key lengths per suite) and by
``mvpn-lab keys`` (``mvpn_lab.collection.module_utils("suites")``: the lengths it generates and
checks). Nothing here holds or prints key material.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

#: The iproute2 algorithm sets the xfrm_state module installs: the ``ip xfrm state`` algorithms
#: (kind, name, module option, ICV/truncation bits) and the key lengths in bytes each option takes.
#: The first length of each option is the one the lab uses (see :data:`LAB_SUITES`).
ALGORITHMS = {
    # the paper era's ESP: AES-CBC with HMAC-SHA1-96 (RFC 3602, RFC 2404)
    "aes-cbc-hmac-sha1": {
        "algos": (("auth-trunc", "hmac(sha1)", "auth_key", 96), ("enc", "cbc(aes)", "enc_key", None)),
        "keys": {"enc_key": (16, 24, 32), "auth_key": (20,)},
    },
    # AES-GCM with a 16-byte ICV (RFC 4106); the key material ends with the 4-byte salt
    "aes-gcm": {
        "algos": (("aead", "rfc4106(gcm(aes))", "aead_key", 128),),
        "keys": {"aead_key": (20, 28, 36)},
    },
}
#: Every key option of any algorithm, in the order the modules check them.
KEY_OPTIONS = ("enc_key", "auth_key", "aead_key")

#: The lab's suites (``ipsec_suite``, ``mvpn-lab keys --suite``) and their algorithm set:
#: paper = cbc(aes) 128 + hmac(sha1) 160, the paper's suite; aead = rfc4106(gcm(aes)) 128 + salt.
LAB_SUITES = {"paper": "aes-cbc-hmac-sha1", "aead": "aes-gcm"}

#: The testbed's security associations, in key-file order, and the SPI each gets from
#: ``mvpn-lab keys generate`` (SPIs are not secret; the ipsec role removes SAs by them when no key
#: file is given).
SA_NAMES = ("cn_to_mn", "mn_to_cn", "cn_to_mn_tunnel", "mn_to_cn_tunnel", "mn_to_ha", "ha_to_mn")
DEFAULT_SPIS = dict((name, 0x1001 + i) for i, name in enumerate(SA_NAMES))


def key_bytes(suite):
    """{key field: length in bytes} the lab uses for ``suite`` (``paper`` or ``aead``)."""
    return dict((option, lengths[0]) for option, lengths in ALGORITHMS[LAB_SUITES[suite]]["keys"].items())


def lab_suites():
    """Every lab suite: {suite: {"algorithm": iproute2 set, "key_bytes": {field: bytes}}}."""
    return dict(
        (suite, {"algorithm": algorithm, "key_bytes": key_bytes(suite)})
        for suite, algorithm in LAB_SUITES.items()
    )


def key_problems(keys, names, suite, variable="mvpn_ipsec_keys"):
    """One line per problem with the keys of the SAs ``names`` for ``suite``; [] when they fit.

    ``keys`` is the key file's mapping ({sa: {spi, <key fields>}}). The lines name fields and
    lengths, never a value.
    """
    import re

    problems = []
    spis = []
    keys = keys if isinstance(keys, dict) else {}
    for name in names:
        where = "%s.%s" % (variable, name)
        entry = keys.get(name)
        if not isinstance(entry, dict):
            problems.append("%s: missing or not a mapping (spi and keys)" % where)
            continue
        spi = entry.get("spi", "")
        if isinstance(spi, int) and not isinstance(spi, bool):
            spis.append(spi)
        elif isinstance(spi, str) and re.match(r"^0[xX][0-9a-fA-F]{1,8}$", spi):
            spis.append(int(spi, 16))
        else:
            problems.append("%s.spi: expected an integer or a 0x... hex string" % where)
        for field, size in key_bytes(suite).items():
            digits = re.sub(r"^0[xX]", "", "%s" % (entry.get(field, ""),))
            if field not in entry:
                problems.append("%s.%s: missing (needed by ipsec_suite %s)" % (where, field, suite))
            elif not re.match(r"^[0-9a-fA-F]*$", digits):
                problems.append("%s.%s: not a hex string" % (where, field))
            elif len(digits) != 2 * size:
                problems.append(
                    "%s.%s: expected %d hex digits (%d bytes), got %d"
                    % (where, field, 2 * size, size, len(digits))
                )
    if len(set(spis)) != len(spis):
        problems.append("%s: the SPIs of %s are not distinct" % (variable, ", ".join(names)))
    return problems
