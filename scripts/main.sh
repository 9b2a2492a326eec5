#!/usr/bin/env bash
# The main job on the virtual twin, from a fresh Debian 12 machine: setup, boot
# the twin (building its image the first time), provision the lab with
# site.yml, run the paper's Test 1 and print where the results are.
# Extra arguments go to the test playbook (e.g. -e mvpn_results_dir=/tmp/r).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
"$here/scripts/setup.sh"
export PATH="$here/.venv/bin:$PATH"
mvpn-lab vlab up
ansible-playbook playbooks/site.yml
ansible-playbook playbooks/test1_validation.yml "$@"
echo "Results: $(ls -d "$here"/results/test1_validation/*/ 2>/dev/null | tail -n 1)"
echo "The twin keeps running; stop it with: .venv/bin/mvpn-lab vlab down"
