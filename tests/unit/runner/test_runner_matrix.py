"""The runner's plan: one matrix (playbooks/vars/handover_matrix.yml), each test's defaults."""

from __future__ import annotations

import itertools

import pytest
import yaml

from mvpn_lab.errors import LabError
from mvpn_lab.runner import matrix, project
from mvpn_lab.runner.matrix import Plan

from .conftest import ROOT

IDS = [
    "mip6-bt_ipsec-none_md-ra",
    "mip6-ro_ipsec-none_md-ra",
    "mip6-bt_ipsec-none_md-l2",
    "mip6-ro_ipsec-none_md-l2",
    "mip6-bt_ipsec-transport_md-ra",
    "mip6-ro_ipsec-transport_md-ra",
    "mip6-bt_ipsec-transport_md-l2",
    "mip6-ro_ipsec-transport_md-l2",
    "mip6-bt_ipsec-tunnel_md-ra",
    "mip6-ro_ipsec-tunnel_md-ra",
    "mip6-bt_ipsec-tunnel_md-l2",
    "mip6-ro_ipsec-tunnel_md-l2",
]


def test_the_matrix_has_the_twelve_ids_in_file_order():
    assert matrix.read_matrix(ROOT) == IDS
    rows = yaml.safe_load((ROOT / matrix.MATRIX_FILE).read_text())["mvpn_handover_configurations"]
    assert [row["id"] for row in rows] == IDS
    # the home agent's handover buffer belongs to the l2 rows
    assert all(row["ha_buffer"] == (row["movement_detection"] == "l2") for row in rows)
    # the home agent's daemon changes 6 times in the 12 rows (signalling, ha_buffer), not 12
    keys = [(row["signalling"], row["ha_buffer"]) for row in rows]
    assert sum(a != b for a, b in itertools.pairwise(keys)) + 1 == 6


def test_defaults_are_the_plain_values_of_the_test_vars():
    assert [matrix.default_repetitions(ROOT, t) for t in matrix.TESTS] == [5, 1, 1]
    settings = matrix.read_test_settings(ROOT, "test2_wlan")
    assert settings["mvpn_test2_only"] == [] and settings["mvpn_test2_dwell"] == {"ra": 20, "l2": 8}
    # the engine's mapping refers to the test's variables with Jinja strings: those are left out
    assert settings["mvpn_handover"] == {
        "test": "test2_wlan",
        "title": "Test 2",
        "profile": "wlan",
        "only_variable": "mvpn_test2_only",
    }
    assert "{{" not in str(settings)


def test_a_templated_default_needs_reps(tmp_path):
    (tmp_path / "playbooks" / "vars").mkdir(parents=True)
    (tmp_path / "playbooks" / "vars" / "test3_gprs.yml").write_text(
        'mvpn_test3_repetitions: \'{{ lookup("env", "REPS") }}\'\n'
    )
    with pytest.raises(LabError, match=r"mvpn_test3_repetitions is not a plain number.*give --reps"):
        matrix.default_repetitions(tmp_path, "test3_gprs")


@pytest.mark.parametrize(("given", "test"), [("test2", "test2_wlan"), ("test4_umts", "test4_umts")])
def test_test_names_and_aliases(given, test):
    assert matrix.canonical_test(given) == test


def test_plan_from_options():
    plan = matrix.plan_from_options(ROOT, "test2_wlan", None, None, False)
    assert plan == Plan("test2_wlan", tuple(IDS), 5) and plan.total == 60
    picked = [f"{IDS[5]},{IDS[0]}", IDS[5]]
    plan = matrix.plan_from_options(ROOT, "test4_umts", picked, "2", False)
    assert plan.configurations == (IDS[0], IDS[5]) and plan.repetitions == 2  # matrix order, once each
    assert list(plan.names()) == [
        f"{IDS[0]}/rep-01",
        f"{IDS[0]}/rep-02",
        f"{IDS[5]}/rep-01",
        f"{IDS[5]}/rep-02",
    ]
    assert matrix.plan_from_options(ROOT, "test3_gprs", None, None, True).repetitions == 1


@pytest.mark.parametrize(
    ("configs", "reps", "quick", "message"),
    [
        (
            ["mip6-bt"],
            None,
            False,
            r"^--configs: unknown configuration id 'mip6-bt'; valid ids: mip6-bt_ipsec",
        ),
        ([","], None, False, r"^--configs: no configuration id given$"),
        (None, "2", True, r"^--quick: .*not with --reps$"),
        (None, "0", False, r"^--reps: expected a whole number >= 1, got '0'$"),
        (None, "two", False, r"^--reps: expected a whole number >= 1, got 'two'$"),
    ],
)
def test_bad_options_are_one_line(configs, reps, quick, message):
    with pytest.raises(LabError, match=message) as raised:
        matrix.plan_from_options(ROOT, "test2_wlan", configs, reps, quick)
    assert "\n" not in str(raised.value) and raised.value.exit_code == 2


def test_unknown_ids_are_all_named():
    with pytest.raises(LabError) as raised:
        matrix.select(IDS, ["x", IDS[0], "y"])
    assert str(raised.value).startswith("--configs: unknown configuration ids 'x', 'y'; valid ids: ")
    assert str(raised.value).endswith(", ".join(IDS))


def test_the_checkout_is_found_from_the_package_or_the_current_directory(tmp_path, monkeypatch):
    assert project.is_root(project.find_root())
    monkeypatch.setattr(project, "__file__", str(tmp_path / "site" / "mvpn_lab" / "runner" / "project.py"))
    assert project.find_root(ROOT / "playbooks" / "vars") == ROOT
    with pytest.raises(LabError, match=r"cannot find the mvpn\.lab collection: no checkout"):
        project.find_root(tmp_path)


def test_without_a_checkout_the_installed_collection_is_run(tmp_path, monkeypatch):
    import mvpn_lab.collection

    monkeypatch.setattr(project, "__file__", str(tmp_path / "site" / "mvpn_lab" / "runner" / "project.py"))
    installed = tmp_path / "collections" / "ansible_collections" / "mvpn" / "lab"
    (installed / "playbooks").mkdir(parents=True)
    monkeypatch.setattr(mvpn_lab.collection, "collection_bases", lambda: [tmp_path / "collections"])
    with pytest.raises(LabError, match="no installed collection"):  # playbooks/ but no MANIFEST.json
        project.find_root(tmp_path / "elsewhere")
    (installed / "MANIFEST.json").write_text("{}")
    assert project.find_root(tmp_path / "elsewhere") == installed
