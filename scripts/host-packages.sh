#!/usr/bin/env bash
# The Debian packages that bindep.txt names for the given profiles, one a line: what
# `bindep -b -l newline PROFILE...` would list on Debian, without needing bindep (scripts/setup.sh
# runs before any Python environment exists). It reads the subset of bindep's syntax that
# bindep.txt keeps to (one platform: selector at most, positive profile names only) and stops on
# anything else; an unknown profile is one line on stderr and exit 2, with nothing listed.
# tests/unit/test_packaging.py checks it against bindep itself.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
[ "$#" -gt 0 ] || { echo "usage: $0 PROFILE..." >&2; exit 2; }
awk -v wanted="$*" '
  BEGIN { n = split(wanted, w, " "); for (i = 1; i <= n; i++) want[w[i]] = 1 }
  { sub(/#.*/, "") }
  NF == 0 { next }
  {
    line = $0
    if (line !~ /^[A-Za-z0-9.+_-]+( +\[[A-Za-z0-9:. -]*\])? *$/) {
      printf "%s:%d: outside the syntax this reader knows: %s\n", FILENAME, FNR, $0 > "/dev/stderr"
      bad = 1; exit 1
    }
    selectors = line; sub(/^[^[]*\[?/, "", selectors); sub(/\].*/, "", selectors)
    platforms = 0; dpkg = 0; profiles = 0; match_profile = 0
    m = split(selectors, s, " ")
    for (i = 1; i <= m; i++) {
      if (s[i] ~ /^platform:/) { platforms++; if (s[i] == "platform:dpkg") dpkg = 1 }
      else { profiles++; known[s[i]] = 1; if (s[i] in want) match_profile = 1 }
    }
    if ((platforms == 0 || dpkg) && (profiles == 0 || match_profile)) out = out $1 "\n"
  }
  END {
    if (bad) exit 1
    known["default"] = 1
    for (p in want) if (!(p in known)) {
      printf "PROFILE: %s is not a profile of %s\n", p, FILENAME > "/dev/stderr"; exit 2
    }
    printf "%s", out  # only once every profile is known: nothing half-listed
  }
' "$here/bindep.txt"
