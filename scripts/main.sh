#!/usr/bin/env bash
# The main job on the virtual twin, from a fresh Debian 12 machine: setup, boot
# the twin (building its image the first time), then the paper's Test 4 (WLAN to
# UMTS handover) with its default repetitions: playbooks/test4_umts.yml
# provisions the lab (site.yml), emulates UMTS on the impairment node, runs the
# 12 configurations, analyses the captures into the paper's phases and writes
# the report beside the paper's figures; its last task prints the report's path.
# Extra arguments go to the playbook (e.g. -e mvpn_test4_repetitions=5).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
"$here/scripts/setup.sh"
export PATH="$here/.venv/bin:$PATH"
mvpn-lab vlab up
status=0
ansible-playbook playbooks/test4_umts.yml "$@" || status=$?
echo "Test 4's run folder and report.html: the last task's message above (results/test4_umts/<UTC>/)"
echo "The twin keeps running; stop it with: .venv/bin/mvpn-lab vlab down"
exit "$status"
