"""``mvpn-lab keys generate|check``: the lab's manual IPsec key file, and that keys are never printed."""

from __future__ import annotations

import copy
import io
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from mvpn_lab import keys
from mvpn_lab.cli import main
from mvpn_lab.errors import LabError

ROOT = Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles" / "ipsec"
SA_NAMES = ["cn_to_mn", "mn_to_cn", "cn_to_mn_tunnel", "mn_to_cn_tunnel", "mn_to_ha", "ha_to_mn"]
HEX_DIGITS = {"paper": {"enc_key": 32, "auth_key": 40}, "aead": {"aead_key": 40}}


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("mvpn-lab: error: ")
    return lines[0].removeprefix("mvpn-lab: error: ")


def _key_values(doc: Any) -> list[str]:
    """Every key string of a key-file document (what must never be printed), without a 0x."""
    values = []
    for entry in (doc.get(keys.VARIABLE) or {}).values():
        if isinstance(entry, dict):
            for field, value in entry.items():
                if field != "spi" and isinstance(value, str) and len(value) >= 8:
                    values.append(value.removeprefix("0x"))
    return values


def _assert_no_keys(text: str, values: list[str]) -> None:
    lowered = text.lower()
    for value in values:
        assert value.lower() not in lowered
        assert value[:16].lower() not in lowered  # not even a prefix of one


def _generate(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str, name: str = "keys.yml") -> Path:
    path = tmp_path / name
    assert main(["keys", "generate", str(path), *args]) == 0
    captured = capsys.readouterr()
    _assert_no_keys(captured.out + captured.err, _key_values(yaml.safe_load(path.read_text())))
    assert captured.err == ""
    return path


@pytest.fixture
def good_doc() -> dict[str, Any]:
    return {keys.VARIABLE: keys.generate_keys("both")}


# --------------------------------------------------------------------------- generate


@pytest.mark.parametrize("suite", ["paper", "aead", "both"])
def test_generate_writes_every_sa_with_keys_of_the_right_length(tmp_path, capsys, suite):
    path = _generate(tmp_path, capsys, "--suite", suite)
    doc = yaml.safe_load(path.read_text())
    assert list(doc) == [keys.VARIABLE]
    table = doc[keys.VARIABLE]
    assert list(table) == SA_NAMES
    suites = ["paper", "aead"] if suite == "both" else [suite]
    fields = {f: n for s in suites for f, n in HEX_DIGITS[s].items()}
    for name, entry in table.items():
        assert set(entry) == {"spi", *fields}, name
        for field, digits in fields.items():
            value = entry[field]
            assert isinstance(value, str) and len(value) == digits, (name, field)
            int(value, 16)
    spis = [int(entry["spi"], 16) for entry in table.values()]
    assert spis == [0x1001, 0x1002, 0x1003, 0x1004, 0x1005, 0x1006]
    assert len(set(spis)) == len(spis)
    values = _key_values(doc)
    assert len(set(values)) == len(values) == len(SA_NAMES) * len(fields)  # every key its own
    assert keys.check_keys(doc).suites == tuple(suites)


def test_generate_output_is_one_line_without_keys(tmp_path, capsys):
    path = tmp_path / "keys.yml"
    assert main(["keys", "generate", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        f"wrote {path}: 6 SAs (SPIs 0x1001-0x1006), suite both, mode 0600; "
        f"now run: ansible-vault encrypt {path}"
    ]


def test_generate_uses_the_secrets_module(tmp_path, monkeypatch, capsys):
    calls: list[int] = []

    def token_hex(nbytes: int) -> str:
        calls.append(nbytes)
        return os.urandom(nbytes).hex()

    monkeypatch.setattr(keys.secrets, "token_hex", token_hex)
    _generate(tmp_path, capsys, "--suite", "paper")
    assert calls == [16, 20] * 6
    monkeypatch.undo()
    first = keys.generate_keys("aead")
    second = keys.generate_keys("aead")
    assert first["cn_to_mn"]["aead_key"] != second["cn_to_mn"]["aead_key"]


def test_generated_file_starts_with_the_vault_comment_and_is_yaml(tmp_path, capsys):
    path = _generate(tmp_path, capsys)
    text = path.read_text()
    header = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    assert text.startswith("# ") and header
    comment = "\n".join(header)
    assert f"ansible-vault encrypt {path}" in comment
    assert "out of the repository" in comment
    assert "--ask-vault-pass" in comment
    assert "mvpn-lab keys check" in comment
    # every value quoted, so YAML never reads a key as a number
    assert all(
        '"' in line
        for line in text.splitlines()
        if line.strip().startswith(("spi:", "enc_", "auth_", "aead_"))
    )


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_generated_file_has_mode_0600(tmp_path, capsys, umask):
    old = os.umask(umask)
    try:
        path = _generate(tmp_path, capsys)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_generate_never_overwrites_without_force(tmp_path, capsys):
    path = tmp_path / "keys.yml"
    path.write_text("precious\n")
    path.chmod(0o640)
    assert main(["keys", "generate", str(path)]) == 2
    assert _error_line(capsys) == f"{path} exists; not overwriting a key file (use --force to replace it)"
    assert path.read_text() == "precious\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.yml"]


def test_generate_does_not_follow_a_dangling_symlink(tmp_path, capsys):
    path = tmp_path / "keys.yml"
    path.symlink_to(tmp_path / "elsewhere.yml")
    assert main(["keys", "generate", str(path)]) == 2
    assert "exists" in _error_line(capsys)
    assert not (tmp_path / "elsewhere.yml").exists()


def test_generate_no_overwrite_race_is_caught_at_publish(tmp_path, capsys, monkeypatch):
    """Another process creates FILE after the first check: os.link refuses, nothing is replaced."""
    path = tmp_path / "keys.yml"
    real_render = keys.render_key_file

    def render_then_race(*args: Any, **kwargs: Any) -> str:
        path.write_text("theirs\n")
        return real_render(*args, **kwargs)

    monkeypatch.setattr(keys, "render_key_file", render_then_race)
    assert main(["keys", "generate", str(path)]) == 2
    assert "exists" in _error_line(capsys)
    assert path.read_text() == "theirs\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.yml"]


def test_generate_force_replaces_with_new_keys_and_mode_0600(tmp_path, capsys):
    path = _generate(tmp_path, capsys)
    before = path.read_text()
    path.chmod(0o644)
    assert main(["keys", "generate", "--force", str(path)]) == 0
    out = capsys.readouterr().out
    after = path.read_text()
    assert after != before
    assert set(_key_values(yaml.safe_load(after))).isdisjoint(_key_values(yaml.safe_load(before)))
    _assert_no_keys(out, _key_values(yaml.safe_load(after)))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.yml"]


@pytest.mark.parametrize("force", [False, True])
def test_generate_failure_leaves_no_partial_file(tmp_path, capsys, monkeypatch, force):
    path = tmp_path / "keys.yml"
    if force:
        path.write_text("old keys\n")

    def no_space(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(keys.os, "fsync", no_space)
    assert main(["keys", "generate", str(path), *(["--force"] if force else [])]) == 2
    assert _error_line(capsys) == f"cannot write {path}: No space left on device"
    if force:
        assert path.read_text() == "old keys\n"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.yml"]
    else:
        assert list(tmp_path.iterdir()) == []


def test_generate_interrupted_leaves_no_partial_file(tmp_path, capsys, monkeypatch):
    path = tmp_path / "keys.yml"

    def interrupted(*args: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(keys.os, "link", interrupted)
    assert main(["keys", "generate", str(path)]) == 130
    assert list(tmp_path.iterdir()) == []


def test_generate_without_hard_links_still_refuses_to_overwrite(tmp_path, capsys, monkeypatch):
    path = tmp_path / "keys.yml"

    def no_links(*args: Any) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(keys.os, "link", no_links)
    assert main(["keys", "generate", str(path)]) == 0
    capsys.readouterr()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.yml"]
    assert keys.check_keys(yaml.safe_load(path.read_text()))


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("missing/keys.yml", "cannot write {path}: No such file or directory"),
        (".", "{path} is a directory; give the key file's name"),
    ],
)
def test_generate_bad_destination_is_one_line(tmp_path, capsys, where, message):
    path = tmp_path / where
    assert main(["keys", "generate", str(path)]) == 2
    assert _error_line(capsys) == message.format(path=path)


def test_generate_warns_inside_a_git_work_tree(tmp_path, capsys):
    (tmp_path / ".git").mkdir()
    (tmp_path / "inventories").mkdir()
    path = tmp_path / "inventories" / "keys.yml"
    assert main(["keys", "generate", str(path)]) == 0
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"mvpn-lab: warning: {path} is inside the git work tree {tmp_path}; "
        "keep key files out of the repository"
    ]
    assert path.exists()


# --------------------------------------------------------------------------- check


def test_check_accepts_a_generated_file(tmp_path, capsys):
    path = _generate(tmp_path, capsys)
    assert main(["keys", "check", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"ok: {path}: 6 SAs, SPIs 0x1001, 0x1002, 0x1003, 0x1004, 0x1005, 0x1006 distinct, "
        "keys for suite paper and aead"
    ]
    assert captured.err == ""
    _assert_no_keys(captured.out, _key_values(yaml.safe_load(path.read_text())))


def test_check_reads_stdin(tmp_path, capsys, monkeypatch):
    path = _generate(tmp_path, capsys, "--suite", "aead")
    monkeypatch.setattr("sys.stdin", io.StringIO(path.read_text()))
    assert main(["keys", "check", "-"]) == 0
    assert capsys.readouterr().out.startswith("ok: <stdin>: 6 SAs")


def test_check_warns_about_a_readable_file(tmp_path, capsys):
    path = _generate(tmp_path, capsys, "--suite", "paper")
    path.chmod(0o644)
    assert main(["keys", "check", str(path)]) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"mvpn-lab: warning: {path} is readable by others (mode 0644)")


def test_check_accepts_variants(good_doc):
    table = good_doc[keys.VARIABLE]
    table["cn_to_mn"]["enc_key"] = "0x" + table["cn_to_mn"]["enc_key"].upper()
    table["mn_to_cn"]["spi"] = 0x2002
    table["mn_to_ha"]["spi"] = "0xFFFFFFFF"
    summary = keys.check_keys(good_doc)
    assert summary.spis == (0x1001, 0x2002, 0x1003, 0x1004, 0xFFFFFFFF, 0x1006)
    assert "key" not in repr(summary).replace("KeyFileSummary", "")


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = doc[keys.VARIABLE]
    for part in parents:
        node = node[part]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value


_DELETE = object()
K = keys.VARIABLE


class New:
    """A mutation that replaces the whole document."""

    def __init__(self, doc: Any) -> None:
        self.doc = doc


def _short(doc: dict[str, Any], sa: str, field: str, digits: int) -> str:
    return doc[K][sa][field][:digits]


CHECK_CASES: list[tuple[str, Any, str]] = [
    # (id, mutation: changes doc in place or returns New(doc), expected message)
    (
        "not a mapping",
        lambda d: New([]),
        f"{K}: missing (the file must define {K}, a mapping of SA names to keys)",
    ),
    (
        "no variable",
        lambda d: New({"other": 1}),
        f"{K}: missing (the file must define {K}, a mapping of SA names to keys)",
    ),
    (
        "table a list",
        lambda d: New({K: ["cn_to_mn"]}),
        f"{K}: expected a mapping of SA names to keys, got a list",
    ),
    (
        "unknown SA",
        lambda d: d[K].update(cn_to_nm={}),
        f"{K}.cn_to_nm: unknown SA (expected {', '.join(SA_NAMES)})",
    ),
    (
        "unknown SA that looks like a key",
        lambda d: d[K].update({d[K]["cn_to_mn"]["enc_key"]: {}}),
        f"{K}.(a key that is not a valid name): unknown SA (expected {', '.join(SA_NAMES)})",
    ),
    (
        "missing SA",
        lambda d: d[K].pop("ha_to_mn"),
        f"{K}.ha_to_mn: missing (every key file has {', '.join(SA_NAMES)})",
    ),
    (
        "SA is a key string",
        lambda d: _set(d, "mn_to_ha", d[K]["mn_to_ha"]["aead_key"]),
        f"{K}.mn_to_ha: expected a mapping with spi and keys, got a string",
    ),
    (
        "unknown field",
        lambda d: _set(d, "cn_to_mn.enc", "x"),
        f"{K}.cn_to_mn.enc: unknown field (expected spi, enc_key, auth_key, aead_key)",
    ),
    ("spi missing", lambda d: _set(d, "cn_to_mn.spi", _DELETE), f"{K}.cn_to_mn.spi: missing"),
    (
        "spi decimal string",
        lambda d: _set(d, "cn_to_mn.spi", "4097"),
        f"{K}.cn_to_mn.spi: expected an integer or a 0x... hex string of at most 8 digits "
        '(e.g. "0x00001001")',
    ),
    (
        "spi too long",
        lambda d: _set(d, "cn_to_mn.spi", "0x100000000"),
        f"{K}.cn_to_mn.spi: expected an integer or a 0x... hex string of at most 8 digits "
        '(e.g. "0x00001001")',
    ),
    (
        "spi bool",
        lambda d: _set(d, "cn_to_mn.spi", True),
        f'{K}.cn_to_mn.spi: expected an integer or a 0x... hex string (e.g. "0x00001001"), got true/false',
    ),
    (
        "spi reserved",
        lambda d: _set(d, "mn_to_cn.spi", 255),
        f"{K}.mn_to_cn.spi: 0xff is not a usable SPI (expected 0x100 to 0xffffffff; "
        "0 is not an SPI and 1-255 are reserved)",
    ),
    (
        "spi duplicate",
        lambda d: _set(d, "mn_to_cn.spi", 0x1001),
        f"{K}.mn_to_cn.spi: 0x00001001 is also the SPI of cn_to_mn (SPIs must be distinct)",
    ),
    (
        "no keys",
        lambda d: _set(d, "mn_to_ha", {"spi": "0x00001005"}),
        f"{K}.mn_to_ha: no keys (expected enc_key and auth_key for suite paper, "
        "and/or aead_key for suite aead)",
    ),
    (
        "paper half",
        lambda d: _set(d, "cn_to_mn.auth_key", _DELETE),
        f"{K}.cn_to_mn.auth_key: missing (suite paper needs enc_key and auth_key)",
    ),
    (
        "enc_key short",
        lambda d: _set(d, "cn_to_mn.enc_key", _short(d, "cn_to_mn", "enc_key", 30)),
        f"{K}.cn_to_mn.enc_key: expected 32 hex digits (16 bytes), got 30",
    ),
    (
        "auth_key as long as an AES key",
        lambda d: _set(d, "mn_to_cn.auth_key", _short(d, "mn_to_cn", "auth_key", 32)),
        f"{K}.mn_to_cn.auth_key: expected 40 hex digits (20 bytes), got 32",
    ),
    (
        "aead_key without salt",
        lambda d: _set(d, "cn_to_mn_tunnel.aead_key", _short(d, "cn_to_mn_tunnel", "aead_key", 32)),
        f"{K}.cn_to_mn_tunnel.aead_key: expected 40 hex digits (20 bytes), got 32",
    ),
    (
        "enc_key not hex",
        lambda d: _set(d, "cn_to_mn.enc_key", "zz" + d[K]["cn_to_mn"]["enc_key"][2:]),
        f"{K}.cn_to_mn.enc_key: not a hex string (digits 0-9 and a-f only, optionally after 0x)",
    ),
    (
        "enc_key with colons",
        lambda d: _set(d, "cn_to_mn.enc_key", ":".join(d[K]["cn_to_mn"]["enc_key"])),
        f"{K}.cn_to_mn.enc_key: not a hex string (digits 0-9 and a-f only, optionally after 0x)",
    ),
    (
        "key a number",
        lambda d: _set(d, "ha_to_mn.aead_key", 1234567890123456789),
        f"{K}.ha_to_mn.aead_key: expected a quoted hex string, got a number",
    ),
    (
        "key null",
        lambda d: _set(d, "ha_to_mn.aead_key", None),
        f"{K}.ha_to_mn.aead_key: expected a quoted hex string, got nothing (null)",
    ),
    (
        "key all zeros",
        lambda d: _set(d, "mn_to_ha.enc_key", "0" * 32),
        f"{K}.mn_to_ha.enc_key: all zeros; generate real keys with mvpn-lab keys generate",
    ),
    (
        "key reused",
        lambda d: _set(d, "mn_to_cn.enc_key", d[K]["cn_to_mn"]["enc_key"]),
        f"{K}.mn_to_cn.enc_key: same key as cn_to_mn.enc_key (every SA needs its own keys)",
    ),
    (
        "suites differ",
        lambda d: [d[K]["mn_to_ha"].pop(f) for f in ("enc_key", "auth_key")],
        f"{K}.mn_to_ha: has keys for suite aead, cn_to_mn for paper and aead "
        "(every SA needs the same suites)",
    ),
]


@pytest.mark.parametrize(("mutate", "message"), [c[1:] for c in CHECK_CASES], ids=[c[0] for c in CHECK_CASES])
def test_check_reports_each_problem_in_one_line_without_keys(tmp_path, capsys, good_doc, mutate, message):
    doc = copy.deepcopy(good_doc)
    secrets_before = _key_values(good_doc)
    result = mutate(doc)
    if isinstance(result, New):
        doc = result.doc
    path = tmp_path / "keys.yml"
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)
    assert main(["keys", "check", str(path)]) == 2
    line = _error_line(capsys)
    assert line == message
    _assert_no_keys(line, secrets_before)
    with pytest.raises(LabError) as exc:  # the same line from the function itself
        keys.check_keys(doc)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            f'{K}:\n  cn_to_mn:\n    enc_key: "00112233445566778899aabbccddeeff\n',
            "{path}: not valid YAML (line 4, column 1: found unexpected end of stream)",
        ),
        (
            f"{K}:\n  cn_to_mn: {{spi: 1}}\n  cn_to_mn: {{spi: 2}}\n",
            "{path}: line 3: cn_to_mn is given twice (YAML would keep the last one)",
        ),
        (
            f"{K}:\n  cn_to_mn:\n    enc_key: !vault |\n      $ANSIBLE_VAULT;1.1;AES256\n      6162\n",
            "{path}: not valid YAML "
            "(line 3, column 14: could not determine a constructor for the tag '!vault')",
        ),
        (
            "$ANSIBLE_VAULT;1.1;AES256\n61626364\n",
            "{path} is encrypted with ansible-vault; check the decrypted text: "
            "ansible-vault view {path} | mvpn-lab keys check -",
        ),
    ],
    ids=["broken YAML", "duplicate SA", "inline vault", "encrypted file"],
)
def test_check_file_level_errors_never_quote_the_file(tmp_path, capsys, text, message):
    path = tmp_path / "keys.yml"
    path.write_text(text)
    assert main(["keys", "check", str(path)]) == 2
    line = _error_line(capsys)
    assert line == message.format(path=path)
    assert "00112233" not in line


def test_check_missing_file(tmp_path, capsys):
    assert main(["keys", "check", str(tmp_path / "nope.yml")]) == 2
    assert _error_line(capsys) == f"no such file: {tmp_path / 'nope.yml'}"


# --------------------------------------------------------------------------- CLI and the role


def test_keys_is_a_sub_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert any(line.split()[:1] == ["keys"] for line in capsys.readouterr().out.splitlines())
    assert main(["keys"]) == 2
    out = capsys.readouterr().out
    assert "generate" in out and "check" in out


def test_bad_suite_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["keys", "generate", "--suite", "des", str(tmp_path / "k.yml")])
    assert exc.value.code == 2
    assert not (tmp_path / "k.yml").exists()
    with pytest.raises(LabError, match="--suite"):
        keys.generate_keys("des")


def test_role_agrees_with_the_key_file():
    """SA names, default SPIs and key lengths: the key file, the lab model (which the ipsec role
    reads) and the xfrm modules share plugins/module_utils/suites.py."""
    from ansible_collections.mvpn.lab.plugins.filter.lab_model import lab_model
    from ansible_collections.mvpn.lab.plugins.module_utils import suites, xfrm

    model = lab_model({})
    sas = model["ipsec"]["sas"]
    assert [sa["name"] for sa in sas] == list(keys.SA_NAMES) == list(keys.SA_DESCRIPTIONS)
    assert {sa["name"]: int(sa["spi"], 16) for sa in sas} == keys.SPIS
    assert {name: s["key_bytes"] for name, s in model["ipsec"]["suites"].items()} == keys.SUITES
    assert keys.SUITES == {"paper": {"enc_key": 16, "auth_key": 20}, "aead": {"aead_key": 20}}
    assert xfrm.SUITES is suites.ALGORITHMS and xfrm.KEY_OPTIONS is suites.KEY_OPTIONS
    for suite, spec in model["ipsec"]["suites"].items():  # the lab's lengths are ones the module takes
        for field, size in spec["key_bytes"].items():
            assert size in xfrm.SUITES[spec["algorithm"]]["keys"][field], (suite, field)
    assert len({sa["reqid"] for sa in sas}) == 3
    role_vars = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    assert "ipsec_lab_model.ipsec.sas" in role_vars["_ipsec_sas"]
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]
    assert specs["options"]["mvpn_ipsec_keys"]["no_log"] is True
