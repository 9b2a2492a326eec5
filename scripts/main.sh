#!/usr/bin/env bash
# The main job on the virtual twin, from a fresh Debian 12 machine: setup, boot
# the twin (building its image the first time), provision the lab with
# site.yml, run the paper's Test 1 and Test 2 (with and without IPsec), analyse
# Test 2 into the paper's phases and print where the results are.
# Extra arguments go to both test playbooks (e.g. -e mvpn_results_dir=/tmp/r).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
"$here/scripts/setup.sh"
export PATH="$here/.venv/bin:$PATH"
mvpn-lab vlab up
ansible-playbook playbooks/site.yml
ansible-playbook playbooks/test1_validation.yml "$@"
ansible-playbook playbooks/test2_wlan.yml "$@"
results=results
for arg in "$@"; do
  case "$arg" in mvpn_results_dir=*) results=${arg#mvpn_results_dir=} ;; esac
done
test2=$(ls -d "$results"/test2_wlan/*/ | tail -n 1)
mvpn-lab analyze --report "$test2" || echo "some handovers are incomplete: see $test2/handover.csv"
echo "Test 1 results: $(ls -d "$results"/test1_validation/*/ 2>/dev/null | tail -n 1)"
echo "Test 2 results and report: $test2"
echo "The twin keeps running; stop it with: .venv/bin/mvpn-lab vlab down"
