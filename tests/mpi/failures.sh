#!/bin/sh
# tests/mpi/failures.sh — a rank that fails ends the whole job, quickly and with a message that
# says so, instead of leaving the other ranks waiting forever (CTest mpi_failures).
#   MPIRUN... : the launcher and its flags, e.g. mpirun --allow-run-as-root --oversubscribe
# Usage: failures.sh PROBE WORK_DIR MPIRUN...
set -u
probe=$1; work=$2; shift 2
rm -rf "$work"; mkdir -p "$work"
fail() { echo "mpi_failures: $*" >&2; exit 1; }
for mode in stall die error; do
  start=$(date +%s)
  # 60 s: far beyond the probe's 5 s collective limit; a hang shows as status 124.
  timeout 60 "$@" -np 2 "$probe" "$mode" > "$work/$mode.txt" 2>&1
  status=$?
  took=$(( $(date +%s) - start ))
  [ "$status" -ne 124 ] || fail "$mode: the job hung (killed after 60 s): $(cat "$work/$mode.txt")"
  [ "$status" -ne 0 ] || fail "$mode: the job ended with status 0"
  grep -q "completed a sum rank 1 never joined" "$work/$mode.txt" && fail "$mode: rank 0 summed alone"
  case $mode in
    stall) grep -q "rank 0 of 2: mpi_probe: error: a sum of 1000 floats waited .* s for the other ranks" "$work/$mode.txt" ||
             fail "stall: no message naming the wait: $(cat "$work/$mode.txt")" ;;
    # The launcher notices the killed rank at once; on a badly overloaded machine rank 0's time
    # limit may run out first, which ends the job as clearly.
    die)   grep -qi "signal 9\|killed\|waited .* s for the other ranks" "$work/$mode.txt" ||
             fail "die: no message naming the killed rank: $(cat "$work/$mode.txt")" ;;
    error) grep -q "rank 1 of 2: mpi_probe: error: cannot read this rank's training data" "$work/$mode.txt" ||
             fail "error: no message from the failing rank: $(cat "$work/$mode.txt")" ;;
  esac
  echo "mpi_failures: $mode: the job ended with status $status after ${took} s"
done
echo "mpi_failures: ok"
