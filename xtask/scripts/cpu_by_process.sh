#!/bin/bash
# CPU used by atom-server, PostgreSQL and the load generator during a
# `cargo xtask bench-http` run, from /proc (docs/PERFORMANCE.md, "HTTP load
# with the audit trail in the database"). Start it, then the benchmark:
#   xtask/scripts/cpu_by_process.sh & cargo xtask bench-http ... --seconds 15
# It waits for the release atom-server, lets it warm up 3 s, then samples
# 8 s and prints each process group's share of one core and the machine's
# idle and iowait shares.
set -euo pipefail
while ! pgrep -f "release/atom-server" >/dev/null; do sleep 0.2; done
sleep 3
ticks=$(getconf CLK_TCK)
snap() {
  for pattern in "release/atom-server" "postgres" "release/xtask"; do
    total=0
    for pid in $(pgrep -f "$pattern" || true); do
      used=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
      total=$((total + ${used:-0}))
    done
    echo "$pattern $total"
  done
  head -1 /proc/stat
}
first=$(snap)
sleep 8
second=$(snap)
paste <(echo "$first" | head -3) <(echo "$second" | head -3) |
  awk -v t="$ticks" '{printf "%s: %.0f%% of one core\n", $1, 100 * ($4 - $2) / t / 8}'
paste <(echo "$first" | tail -1) <(echo "$second" | tail -1) |
  awk '{n = NF / 2; for (i = 2; i <= n; i++) { d = $(i + n) - $i; all += d; if (i == 5) idle = d; if (i == 6) io = d }
        printf "machine idle %.0f%%, iowait %.0f%%\n", 100 * idle / all, 100 * io / all}'
