#!/usr/bin/env bash
# One-time (and idempotent) setup on a Debian 12 host: the host packages the
# controller, the virtual twin and the tests need (bindep.txt), and the project's Python
# environment (.venv) with the dependencies pinned in requirements.txt and requirements-dev.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${MVPN_VENV:-$here/.venv}

# bindep.txt's controller, twin and test profiles (why each package is there: see that file).
wanted=$("$here/scripts/host-packages.sh" controller twin test)
mapfile -t packages <<< "$wanted"
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: host packages missing (${missing[*]}); run this script as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 2
  fi
  echo "==> installing host packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup: $python is older than 3.11; set PYTHON to a Python >= 3.11" >&2
  exit 2
fi
stamp="$venv/.mvpn-setup-stamp"
# The environment is rebuilt when the package's metadata or a pinned version changes.
want=$(cat "$here/pyproject.toml" "$here/requirements.txt" "$here/requirements-dev.txt" | sha256sum | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> creating the Python environment in $venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -e "$here[dev]"
  echo "$want" > "$stamp"
fi
# ansible.cfg's strategy (mvpn.lab.mitogen_linear) needs Mitogen, and a Mitogen that accepts this
# ansible-core: importing its loaders checks that, so a mismatch stops here rather than in a playbook.
mitogen=$("$venv/bin/python" -c 'import importlib.metadata as m, ansible_mitogen.loaders; print(m.version("mitogen"))')
echo "setup: ok ($("$venv/bin/python" --version), ansible-core $("$venv/bin/python" -c 'import ansible.release as r; print(r.__version__)'), mitogen $mitogen)"
