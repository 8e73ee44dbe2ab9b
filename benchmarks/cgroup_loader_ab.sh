#!/bin/bash
# The papers-mini loader from a cold page cache inside a memory cgroup (v1, needs root), two
# trees alternating: does a tree size its mapped-file reading by the cgroup's limit or by the
# host's memory? Session 36's run: benchmarks/results/cpu-2core-vm_cgroup_papers_mini_s36.jsonl.
#
#   benchmarks/scale.py --root DATA --graphs papers-mini --stages gen --budget 4G
#   benchmarks/cgroup_loader_ab.sh OUT.jsonl ROUNDS LIMIT_GIB DATA BASE_TREE NEW_TREE
#
# Each run drops the page cache, joins the cgroup and runs `scale.py --stages load` (60 batches);
# OUT gets one line per run: the tree, wall seconds, the cgroup's peak usage and scale.py's row.
set -euo pipefail
if [ $# -ne 6 ]; then
  echo "usage: $0 OUT.jsonl ROUNDS LIMIT_GIB DATA BASE_TREE NEW_TREE (root, cgroup v1)" >&2
  exit 2
fi
OUT=$1; ROUNDS=$2; LIMIT_GIB=$3; DATA=$4; BASE=$5; NEW=$6
PY=${PYTHON:-python}
CG=/sys/fs/cgroup/memory/gnnsys_cgroup_ab
mkdir -p "$CG"
echo $((LIMIT_GIB << 30)) > "$CG/memory.limit_in_bytes"
for r in $(seq 1 "$ROUNDS"); do
  for tree in "$BASE" "$NEW"; do
    sync; echo 3 > /proc/sys/vm/drop_caches
    echo 0 > "$CG/memory.max_usage_in_bytes"
    start=$(date +%s.%N)
    rows=$(bash -c "echo \$\$ > $CG/cgroup.procs; cd $tree && PYTHONPATH=$tree exec timeout 420 \
      $PY benchmarks/scale.py --root $DATA --graphs papers-mini --stages load --batches 60 \
      --warmup 3 --gather-batches 0 --normal-batches 0 --timeout 400" | grep '"stage": "load"' || true)
    end=$(date +%s.%N)
    printf '{"tree": "%s", "round": %s, "limit_gib": %s, "wall_s": %s, "cgroup_peak_bytes": %s, "row": %s}\n' \
      "$tree" "$r" "$LIMIT_GIB" "$(echo "$end - $start" | bc)" "$(cat "$CG/memory.max_usage_in_bytes")" \
      "${rows:-null}" >> "$OUT"
  done
done
