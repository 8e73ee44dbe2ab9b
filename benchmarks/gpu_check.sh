#!/usr/bin/env bash
# GPU check: the GPU-only tests and the GPU benchmarks, in under 8 minutes, from the repo root.
#
#   bash benchmarks/gpu_check.sh            # results in ./gpu_out
#   OUT=/tmp/res PYTHON=python3 bash benchmarks/gpu_check.sh
#
# Every step runs under `timeout` (capped by what is left of the overall budget), a failing step
# does not stop the others, and each step's status is one JSON line in $OUT/gpu_check.jsonl
# (stdout of a benchmark: $OUT/<step>.jsonl, its stderr: $OUT/<step>.log).
set -u

OUT="${OUT:-./gpu_out}"
PY="${PYTHON:-python}"
BUDGET="${GPU_CHECK_BUDGET:-460}"   # seconds for everything (the brief allows 8 minutes)
mkdir -p "$OUT"
SUMMARY="$OUT/gpu_check.jsonl"
: > "$SUMMARY"
START=$(date +%s)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TRITON_DEFAULT_FP_FUSION="${TRITON_DEFAULT_FP_FUSION:-1}"
unset TRITON_INTERPRET

now() { date +%s; }
remaining() { echo $(( BUDGET - ($(now) - START) )); }

record() {  # step status rc seconds [note]
  local note="${5:-}"
  note="${note//\\/\\\\}"; note="${note//\"/\\\"}"
  printf '{"step": "%s", "status": "%s", "rc": %s, "seconds": %s, "note": "%s"}\n' \
    "$1" "$2" "$3" "$4" "$note" | tee -a "$SUMMARY"
}

# run_step NAME MAX_SECONDS CMD... : stdout -> $OUT/NAME.jsonl, stderr -> $OUT/NAME.log
run_step() {
  local name="$1" max="$2"; shift 2
  local left; left=$(remaining)
  local limit=$(( max < left - 5 ? max : left - 5 ))
  if [ "$limit" -lt 15 ]; then
    record "$name" skipped -1 0 "out of time budget"
    return 0
  fi
  local t0; t0=$(now)
  timeout --signal=TERM --kill-after=10 "$limit" "$@" > "$OUT/$name.jsonl" 2> "$OUT/$name.log"
  local rc=$?
  local dt=$(( $(now) - t0 ))
  local status=ok
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then status=timeout; elif [ "$rc" -ne 0 ]; then status=failed; fi
  local note; note=$(tail -c 300 "$OUT/$name.log" | tr '\n\t\r' '   ')
  [ -n "$note" ] || note=$(tail -c 300 "$OUT/$name.jsonl" | tr '\n\t\r' '   ')
  record "$name" "$status" "$rc" "$dt" "$note"
  return 0
}

# ---------------------------------------------------------------- environment
ENV_JSON=$("$PY" - <<'EOF' 2>&1
import json, platform
d = {"python": platform.python_version()}
try:
    import torch
    d.update(torch=torch.__version__, cuda=torch.version.cuda, cuda_available=torch.cuda.is_available())
    if torch.cuda.is_available():
        d["gpu"] = torch.cuda.get_device_name(0)
        d["gpus"] = torch.cuda.device_count()
except Exception as e:
    d["torch_error"] = repr(e)
try:
    import triton
    d["triton"] = triton.__version__
except Exception as e:
    d["triton_error"] = repr(e)
print(json.dumps(d))
EOF
)
echo "{\"step\": \"environment\", \"info\": $ENV_JSON}" | tee -a "$SUMMARY"
case "$ENV_JSON" in
  *'"cuda_available": true'*) ;;
  *) record environment failed 1 0 "torch.cuda.is_available() is not true"; exit 1 ;;
esac

if ! "$PY" -c "import gnnsys.unified_tensor, numba, hypothesis" >/dev/null 2>&1; then
  run_step pip_install 90 "$PY" -m pip install -q --no-build-isolation -e ".[test]"
  "$PY" -c "import gnnsys.unified_tensor" >/dev/null 2>&1 \
    || record import failed 1 0 "gnnsys is not importable; later steps will fail"
fi

# ---------------------------------------------------------------- tests
T0=$(now)
timeout --signal=TERM --kill-after=10 $(( $(remaining) < 150 ? $(remaining) : 150 )) \
  "$PY" -m pytest -m gpu -q -p no:cacheprovider --continue-on-collection-errors tests \
  --junitxml="$OUT/pytest_gpu.xml" \
  > "$OUT/pytest_gpu.log" 2>&1
RC=$?
"$PY" - "$OUT/pytest_gpu.xml" "$RC" "$(( $(now) - T0 ))" <<'EOF' | tee -a "$SUMMARY"
import json, sys
import xml.etree.ElementTree as ET
path, rc, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rec = {"step": "pytest_gpu", "rc": rc, "seconds": secs}
try:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    for k in ("tests", "failures", "errors", "skipped"):
        rec[k] = sum(int(s.get(k, 0)) for s in suites)
    failed = []
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(case.get("classname", "") + "::" + case.get("name", ""))
    rec["failed"] = failed[:50]
    rec["status"] = "ok" if rc == 0 else ("timeout" if rc in (124, 137) else "failed")
except Exception as e:
    rec["status"] = "timeout" if rc in (124, 137) else "failed"
    rec["note"] = f"no junit xml: {e!r}"
print(json.dumps(rec))
EOF

# ---------------------------------------------------------------- benchmarks
run_step gather_bandwidth 110 "$PY" benchmarks/gather_bandwidth.py --device cuda \
  --table-gb 2 --repeats 7
run_step unified_epoch 150 "$PY" benchmarks/unified_epoch.py --dataset products \
  --max-batches 40 --epochs 1
for b in conv_im2win bessel_speed sparse_ops; do
  if [ -f "benchmarks/$b.py" ]; then
    # Only where the script takes --device (its --help says so): else it is not a GPU benchmark.
    if timeout 20 "$PY" "benchmarks/$b.py" --help 2>/dev/null | grep -q -- "--device"; then
      run_step "$b" 45 "$PY" "benchmarks/$b.py" --device cuda
    else
      record "$b" skipped -1 0 "benchmarks/$b.py has no --device flag"
    fi
  else
    record "$b" skipped -1 0 "benchmarks/$b.py does not exist"
  fi
done

echo "{\"step\": \"done\", \"seconds\": $(( $(now) - START ))}" | tee -a "$SUMMARY"
exit 0
