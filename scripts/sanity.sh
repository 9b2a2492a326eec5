#!/usr/bin/env bash
# ansible-test sanity on exactly what the collection ships: build the collection
# artifact, unpack it under ansible_collections/mvpn/lab in a scratch folder and
# test it there (ansible-test needs that layout and a git work tree).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${MVPN_VENV:-$here/.venv}
export PATH="$venv/bin:$PATH"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ansible-test bootstraps pip in its sanity venvs with a script it downloads from a
# host this machine cannot reach; the stand-in does the same with ensurepip.
pip_version=$("$venv/bin/python" - <<'PY'
import re, ansible_test, pathlib
src = (pathlib.Path(ansible_test.__file__).parent / "_internal/python_requirements.py").read_text()
print(re.search(r"pip='([0-9.]+)'", src).group(1))
PY
)
cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
mkdir -p "$(dirname "$cache")"
[ -s "$cache" ] || cp "$here/scripts/ansible_test_get_pip.py" "$cache"

ansible-galaxy collection build "$here" --output-path "$work" >/dev/null
dest="$work/ansible_collections/mvpn/lab"
mkdir -p "$dest"
tar -C "$dest" -xzf "$work"/mvpn-lab-*.tar.gz
cd "$dest"
git init -q && git add -A && git -c user.email=ci@mvpn-lab.invalid -c user.name=ci commit -qm sanity
ansible-test sanity --python "$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" "$@"
