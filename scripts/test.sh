#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: setup, static checks,
# type checks, unit tests, then everything on the virtual twin (molecule role scenarios,
# site.yml idempotence, preflight, Tests 1, 2 and 4, MIPv6 security,
# impairment). pytest drives the twin part, so its closing line is the
# suite's verdict.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
start=$(date +%s)
stage() { printf '\n==> [%4ss] %s\n' "$(( $(date +%s) - start ))" "$*"; }

stage "setup (host packages, Python environment)"
scripts/setup.sh
export PATH="$here/.venv/bin:$PATH"

stage "ruff"
ruff check .

stage "mypy (src/, then the collection's plugins; configuration in pyproject.toml)"
mypy
mypy -p ansible_collections.mvpn.lab.plugins

stage "ansible-lint --profile production"
ansible-lint --profile production

stage "changelog fragments (antsibull-changelog lint)"
antsibull-changelog lint

stage "ansible-test sanity"
scripts/sanity.sh

stage "pytest: unit, bad input, and the virtual twin (molecule, preflight, Tests 1, 2 and 4, MIPv6 security, impairment)"
pytest -v -p no:cacheprovider --durations=15 tests/unit tests/integration tests/twin "$@"
stage "done"
