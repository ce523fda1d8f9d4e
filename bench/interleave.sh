#!/bin/bash
# Interleaved before/after runs of bench/claim.py and bench/throughput.py (issue #15's
# performance must-show; figures in bench/RESULTS-15.md).
#
#   bench/interleave.sh OUTDIR ROUNDS NAME=SRC_TREE:BENCH_TREE ...
#
# Each NAME is measured once per round with the interpreter of this worktree's venv,
# importing cadenza from SRC_TREE/src and running BENCH_TREE/bench's scripts (a tree
# made with `git worktree add --detach /tmp/perf/NAME COMMIT`; BENCH_TREE is usually
# the same tree). The order rotates every round, so no variant always runs first or
# last. CLAIM_ARGS and THROUGHPUT_ARGS override the benches' arguments (set either
# to "skip" to leave that bench out). Summarise with bench/interleave_report.py.
set -u
out=$1; rounds=$2; shift 2; specs=("$@"); n=${#specs[@]}
py=$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python
claim_args=${CLAIM_ARGS:---repeat 1 --rows 40000}
throughput_args=${THROUGHPUT_ARGS:---repeat 1 --endpoints 5000}
mkdir -p "$out"
for r in $(seq 1 "$rounds"); do
  for i in $(seq 0 $((n - 1))); do
    spec=${specs[$(((i + r) % n))]}
    name=${spec%%=*}; trees=${spec#*=}; src=${trees%%:*}/src; bench=${trees#*:}/bench
    echo "round $r $name $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/log"
    PYTHONPATH=$src $py -c "import cadenza; print(cadenza.__file__)" > "$out/which_${name}_$r.txt"
    if [ "$claim_args" != skip ]; then
      # shellcheck disable=SC2086
      PYTHONPATH=$src $py "$bench/claim.py" $claim_args > "$out/claim_${name}_$r.txt" 2>&1
    fi
    if [ "$throughput_args" != skip ]; then
      # shellcheck disable=SC2086
      PYTHONPATH=$src $py "$bench/throughput.py" $throughput_args > "$out/tp_${name}_$r.txt" 2>&1
    fi
  done
done
echo "done $(date -u +%T)" | tee -a "$out/log"
