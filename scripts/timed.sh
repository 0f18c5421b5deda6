#!/usr/bin/env bash
# Run one tier of `make test` and print its wall time: `timed.sh NAME COMMAND...`.
# With OXY_TIERS_LOG set, the line is also added there, for the summary at the end of the run.
set -uo pipefail
name=$1
shift
echo "== ${name} =="
start=$(date +%s)
"$@"
rc=$?
line=$(printf '%-22s %5d s  (exit %d, load %s)' "$name" "$(($(date +%s) - start))" "$rc" \
    "$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo ?)")
echo "== ${line} =="
[ -n "${OXY_TIERS_LOG:-}" ] && echo "$line" >>"$OXY_TIERS_LOG"
# pytest's 5 is "no test selected" (a tier can be empty on one backend), not a failure.
[ "$rc" -eq 5 ] && rc=0
exit "$rc"
