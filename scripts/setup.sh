#!/usr/bin/env bash
# One-time (and idempotent) setup on a Debian 12 host: the host packages the
# virtual twin and the tests need, and the project's Python environment (.venv)
# with the dependencies pinned in pyproject.toml.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${MVPN_VENV:-$here/.venv}

# qemu-system-x86 runs the twin, mmdebstrap builds its image, mke2fs (e2fsprogs)
# writes the disk, ssh reaches it; tshark and tcpdump read captures in the tests; chromium and
# chromium-driver open report.html in a headless browser in the unit tests.
packages=(qemu-system-x86 qemu-utils mmdebstrap e2fsprogs openssh-client tshark tcpdump
          python3 python3-venv git ca-certificates chromium chromium-driver)
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
want=$(sha256sum "$here/pyproject.toml" | cut -d' ' -f1)
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
