"""The host's apt sources: one-line and deb822 parsing, and the bookworm lines the image uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from mvpn_lab.errors import LabError
from mvpn_lab.vlab import aptsources
from mvpn_lab.vlab.aptsources import AptSource

DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


def _etc_apt(root: Path, sources_list: str | None = None, **parts: str) -> Path:
    """A fake /etc/apt under root: sources.list and sources.list.d/<name> files."""
    apt = root / "etc/apt"
    (apt / "sources.list.d").mkdir(parents=True)
    if sources_list is not None:
        (apt / "sources.list").write_text(sources_list)
    for name, text in parts.items():
        (apt / "sources.list.d" / name.replace("__", ".")).write_text(text)
    return root


# --- one-line format -------------------------------------------------------------------


def test_list_plain_lines_comments_and_deb_src():
    text = (
        "# the main archive\n"
        "deb http://deb.debian.org/debian bookworm main contrib non-free-firmware\n"
        "deb-src http://deb.debian.org/debian bookworm main\n"
        "#deb http://disabled.example/debian bookworm main\n"
        "   \n"
        "deb http://deb.debian.org/debian bookworm-updates main # trailing comment\n"
        "deb http://incomplete.example/debian bookworm\n"
    )
    assert aptsources._parse_list(text) == [
        AptSource("http://deb.debian.org/debian", "bookworm", ("main", "contrib", "non-free-firmware")),
        AptSource("http://deb.debian.org/debian", "bookworm-updates", ("main",)),
    ]


def test_list_options_one_word_and_spaced():
    text = (
        f"deb [signed-by={DEBIAN_KEYRING}] http://a.example/debian bookworm main\n"
        "deb [ arch=amd64 signed-by=/usr/share/keyrings/other.gpg ] http://b.example/debian bookworm main\n"
        "deb [arch=amd64,arm64 trusted=yes] http://c.example/debian bookworm-security main\n"
    )
    assert aptsources._parse_list(text) == [
        AptSource("http://a.example/debian", "bookworm", ("main",), DEBIAN_KEYRING),
        AptSource("http://b.example/debian", "bookworm", ("main",), "/usr/share/keyrings/other.gpg"),
        AptSource("http://c.example/debian", "bookworm-security", ("main",)),
    ]


def test_list_tab_after_deb_is_a_source():
    assert aptsources._parse_list("deb\thttp://deb.debian.org/debian\tbookworm\tmain\n") == [
        AptSource("http://deb.debian.org/debian", "bookworm", ("main",))
    ]


def test_aptsource_line_drops_options():
    src = AptSource("http://deb.debian.org/debian", "bookworm", ("main", "contrib"), DEBIAN_KEYRING)
    assert src.line() == "deb http://deb.debian.org/debian bookworm main contrib"


# --- deb822 format ---------------------------------------------------------------------

DEB822 = f"""\
Types: deb deb-src
# a comment inside the stanza
URIs: http://deb.debian.org/debian http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: {DEBIAN_KEYRING}

Types: deb-src
URIs: http://src-only.example/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
Enabled: no

# A stanza whose fields are all commented out
# Types: deb
# URIs: http://commented.example/debian

types: deb
uris: http://security.debian.org/debian-security
suites:
 bookworm-security
components: main
"""


def test_deb822_stanzas():
    sources = aptsources._parse_deb822(DEB822)
    assert [(s.uri, s.suite, s.components) for s in sources] == [
        ("http://deb.debian.org/debian", "bookworm", ("main", "contrib")),
        ("http://deb.debian.org/debian", "bookworm-updates", ("main", "contrib")),
        ("http://mirror.example/debian", "bookworm", ("main", "contrib")),
        ("http://mirror.example/debian", "bookworm-updates", ("main", "contrib")),
        ("http://security.debian.org/debian-security", "bookworm-security", ("main",)),
    ]
    assert sources[0].signed_by == DEBIAN_KEYRING
    assert sources[-1].signed_by == ""


@pytest.mark.parametrize("enabled", ["no", "No", "NO"])
def test_deb822_disabled_stanza_is_ignored(enabled):
    text = (
        f"Types: deb\nURIs: http://x.example/debian\nSuites: bookworm\nComponents: main\nEnabled: {enabled}\n"
    )
    assert aptsources._parse_deb822(text) == []


def test_deb822_blank_line_with_spaces_separates_stanzas():
    text = (
        "Types: deb\nURIs: http://one.example/debian\nSuites: bookworm\nComponents: main\n"
        "   \n"
        "Types: deb\nURIs: http://two.example/debian\nSuites: bookworm-updates\nComponents: main\n"
    )
    assert [(s.uri, s.suite) for s in aptsources._parse_deb822(text)] == [
        ("http://one.example/debian", "bookworm"),
        ("http://two.example/debian", "bookworm-updates"),
    ]


def test_deb822_embedded_key_continuation_lines():
    text = (
        "Types: deb\nURIs: https://vendor.example/apt\nSuites: bookworm\nComponents: main\n"
        "Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n mQINBF...\n"
        " -----END PGP PUBLIC KEY BLOCK-----\n"
    )
    (src,) = aptsources._parse_deb822(text)
    assert src.uri == "https://vendor.example/apt"
    assert "BEGIN PGP PUBLIC KEY BLOCK" in src.signed_by


# --- the sources of the image ----------------------------------------------------------


def test_debian_sources_from_a_host_tree(tmp_path):
    root = _etc_apt(
        tmp_path,
        sources_list=(
            "deb http://deb.debian.org/debian bookworm main contrib\n"
            "deb http://deb.debian.org/debian bookworm-backports main\n"  # not wanted
            "deb http://deb.debian.org/debian trixie main\n"  # another release
        ),
        debian__sources=(
            "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n"
            f"Components: main\nSigned-By: {DEBIAN_KEYRING}\n\n"
            "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n"
            f"Components: main\nSigned-By: {DEBIAN_KEYRING}\n"
        ),
        # third-party repositories: none of them may end up in the image
        docker__list=(
            "deb [signed-by=/etc/apt/keyrings/docker.gpg] "
            "https://download.docker.com/linux/debian bookworm stable\n"
        ),
        google__list="deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n",
        hashicorp__list=(
            "deb [signed-by=/usr/share/keyrings/hashicorp-archive-keyring.gpg] "
            "https://apt.releases.hashicorp.com bookworm main\n"
        ),
        nodesource__sources=(
            "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\n"
            "Components: main\nSigned-By: /usr/share/keyrings/nodesource.gpg\n"
        ),
        vendor__sources=(
            "Types: deb\nURIs: https://vendor.example/debian\nSuites: bookworm\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/vendor.gpg\n"
        ),
        old__list__disabled="deb http://old.example/debian bookworm main\n",  # not a .list file
    )
    assert aptsources.debian_sources(root=root, override="") == [
        "deb http://deb.debian.org/debian bookworm main",  # once, though listed twice
        "deb http://deb.debian.org/debian bookworm-updates main",
        "deb http://deb.debian.org/debian-security bookworm-security main",
    ]


def test_debian_sources_old_style_security_suite(tmp_path):
    root = _etc_apt(
        tmp_path,
        sources_list=(
            "deb http://mirror.example/debian bookworm main\n"
            "deb http://security.debian.org bookworm/updates main\n"
        ),
    )
    assert aptsources.debian_sources(root=root, override="") == [
        "deb http://mirror.example/debian bookworm main",
        "deb http://security.debian.org bookworm/updates main",
    ]


def test_debian_sources_override_ignores_the_host(tmp_path, monkeypatch):
    root = _etc_apt(tmp_path)  # no bookworm source at all
    monkeypatch.setenv("MVPN_VLAB_MIRROR", "http://env-mirror.example/debian")
    assert aptsources.debian_sources(root=root) == [
        "deb http://env-mirror.example/debian bookworm main",
        "deb http://env-mirror.example/debian bookworm-updates main",
    ]
    # an explicit mirror (--mirror) wins over the environment
    assert aptsources.debian_sources(root=root, override="http://cli.example/debian")[0] == (
        "deb http://cli.example/debian bookworm main"
    )


@pytest.mark.parametrize(
    "sources_list",
    [
        None,  # no sources.list at all
        "deb http://deb.debian.org/debian bookworm-updates main\n",  # updates only
        "deb http://deb.debian.org/debian bookworm contrib non-free\n",  # no main
        "deb [signed-by=/usr/share/keyrings/vendor.gpg] https://vendor.example bookworm main\n",
    ],
)
def test_no_bookworm_main_source_is_one_line_error(tmp_path, sources_list):
    root = _etc_apt(tmp_path, sources_list=sources_list)
    with pytest.raises(LabError) as err:
        aptsources.debian_sources(root=root, override="")
    message = str(err.value)
    assert "\n" not in message
    assert "bookworm" in message and "MVPN_VLAB_MIRROR" in message
    assert err.value.exit_code == 2


def test_host_sources_without_etc_apt(tmp_path):
    assert aptsources.host_sources(tmp_path) == []
