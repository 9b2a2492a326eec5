"""Every filter of the collection has documentation that ansible-doc prints (issue 17).

The filters are enumerated from the FilterModule of every file in plugins/filter, so a filter added
without its ``plugins/filter/NAME.yml`` (DOCUMENTATION, EXAMPLES, RETURN) fails here. The options of
each documentation are compared with the filter function's parameters: ``_input`` is the first
parameter (the value left of the ``|``), the other options are named as the other parameters.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
FILTER_DIR = ROOT / "plugins" / "filter"
COLLECTIONS = ROOT / "collections"

# The types ansible-test's documentation schema accepts for plugins other than modules. Its
# validate-modules test skips filters (several in one file), so nothing else checks them.
SCALAR_TYPES = {"boolean", "bool", "integer", "int", "float", "str", "string", "path", "raw"}
RETURN_TYPES = SCALAR_TYPES | {"list", "dict", "dictionary"}
OPTION_TYPES = RETURN_TYPES | {"none", "tmp", "temppath", "tmppath", "pathspec", "pathlist"}


def _filters():
    """{filter name: function} of every FilterModule in plugins/filter."""
    found = {}
    for path in sorted(FILTER_DIR.glob("*.py")):
        if path.name == "__init__.py":
            continue
        module = importlib.import_module("ansible_collections.mvpn.lab.plugins.filter." + path.stem)
        for name, function in module.FilterModule().filters().items():
            assert name not in found, f"filter {name} is defined twice (again in {path.name})"
            found[name] = function
    return found


FILTERS = _filters()


def _ansible_doc(names):
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false")
    command = [sys.executable, "-m", "ansible.cli.doc", "-t", "filter", "--json"]
    return subprocess.run(
        [*command, *(f"mvpn.lab.{name}" for name in names)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def docs():
    """{filter name: ansible-doc's JSON for it, or the error ansible-doc gave}, in one call.

    ansible-doc stops at the first filter it cannot document; then each filter is asked for on its
    own, so that only the undocumented ones fail.
    """
    proc = _ansible_doc(FILTERS)
    if proc.returncode == 0:
        data = json.loads(proc.stdout)
        return {name: data.get(f"mvpn.lab.{name}", proc.stderr.strip()) for name in FILTERS}
    out = {}
    for name in FILTERS:
        single = _ansible_doc([name])
        if single.returncode == 0:
            out[name] = json.loads(single.stdout)[f"mvpn.lab.{name}"]
        else:
            out[name] = single.stderr.strip()
    return out


def test_the_filters_are_found():
    assert len(FILTERS) >= 17 and "click_config" in FILTERS and "unit_file" in FILTERS


def test_every_documentation_file_belongs_to_a_filter():
    orphans = sorted(p.name for p in FILTER_DIR.glob("*.y*ml") if p.stem not in FILTERS)
    assert not orphans, f"documentation for no filter: {', '.join(orphans)}"


def _walk(specs, children, where=""):
    """(dotted name, spec) of every entry of ``specs`` and of their ``children`` (suboptions, contains)."""
    for key, spec in (specs or {}).items():
        yield where + key, spec
        yield from _walk(spec.get(children), children, where + key + ".")


def _positional(doc):
    return [part.strip() for part in str(doc.get("positional", "")).split(",") if part.strip()]


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_ansible_doc_prints_the_filter_documentation(docs, name):
    entry = docs[name]
    assert isinstance(entry, dict), f"ansible-doc -t filter mvpn.lab.{name}: {entry}"
    doc = entry["doc"]
    assert doc["name"] == name
    # from this checkout, the file named after the filter
    assert Path(doc["filename"]).resolve() == (FILTER_DIR / (name + ".yml")).resolve()
    assert isinstance(doc.get("short_description"), str) and doc["short_description"].strip()
    description = doc.get("description")
    assert description and all(isinstance(line, str) and line.strip() for line in description)
    assert doc.get("author")
    examples = entry.get("examples") or ""
    assert f"mvpn.lab.{name}" in examples, f"EXAMPLES do not use mvpn.lab.{name}"
    for key, spec in _walk(doc.get("options"), "suboptions"):
        assert spec.get("description"), f"{name}: option {key} has no description"
        assert spec.get("type", "str") in OPTION_TYPES, f"{name}: option {key} has type {spec['type']!r}"
        assert spec.get("elements", "str") in RETURN_TYPES, f"{name}: option {key}'s elements"
    for key, spec in _walk(entry.get("return"), "contains"):
        assert spec.get("description"), f"{name}: return value {key} has no description"
        assert spec.get("type", "str") in RETURN_TYPES, (
            f"{name}: return value {key} has type {spec['type']!r}"
        )
        assert spec.get("elements", "str") in RETURN_TYPES, f"{name}: return value {key}'s elements"
    value = (entry.get("return") or {}).get("_value")
    assert value and value.get("description") and value.get("type"), (
        "RETURN: _value needs a description and a type"
    )


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_the_options_are_the_function_parameters(docs, name):
    entry = docs[name]
    assert isinstance(entry, dict), f"ansible-doc -t filter mvpn.lab.{name}: {entry}"
    doc = entry["doc"]
    options = doc.get("options") or {}
    params = [
        p
        for p in inspect.signature(FILTERS[name]).parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    by_option = {"_input": params[0], **{p.name: p for p in params[1:]}}
    assert sorted(options) == sorted(by_option), f"options of mvpn.lab.{name}"
    for option, spec in options.items():
        assert spec.get("description") and spec.get("type"), f"{name}.{option} needs a description and a type"
        param = by_option[option]
        if param.default is param.empty:
            assert spec.get("required") is True, f"{name}.{option} has no default in Python: required"
        elif param.default is not None and "default" in spec:
            assert spec["default"] == param.default, (
                f"{name}.{option}: the documented default is not Python's"
            )
    # positional: _input, then parameters in the function's order (any number of them)
    positional = _positional(doc)
    assert positional[:1] == ["_input"], f"{name}: positional must start with _input"
    assert positional[1:] == [p.name for p in params[1 : len(positional)]], f"{name}: positional order"
