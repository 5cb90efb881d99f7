#!/bin/bash
# Everything a GPU lease should measure, in one script (device time is rare: set-up is not repeated).
#
#   run: bash experiments/gpu_lease.sh            (on the lent machine; results under $OUT)
#   carry: .scratch/wheels (cp312 wheels, experiments/README.md "On a GPU machine")
#
# Each step has its own time limit and writes its log even when it fails or times out; the lease's
# budget (15 minutes at present) fits the first four steps with room to spare.
set -u
OUT=${OUT:-/tmp/lrenum-out}
mkdir -p "$OUT"
export XLA_PYTHON_CLIENT_PREALLOCATE=false     # device peaks are then lrenum's own
export LRENUM_CACHE_DIR=/tmp/lrenum-jax-cache
step() {  # step NAME SECONDS COMMAND...
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s)
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  echo "$name rc=$? $(( $(date +%s) - t0 )) s" | tee -a "$OUT/steps.txt"
}
{ nvidia-smi; python -c "import jax; print(jax.__version__, jax.devices())"; } > "$OUT/machine.txt" 2>&1
if ls .scratch/wheels/*.whl > /dev/null 2>&1; then
  pip install --no-index --no-deps --target /tmp/site .scratch/wheels/*.whl > "$OUT/install.log" 2>&1
  export PYTHONPATH=/tmp/site
fi
pip install --no-index --no-deps --no-build-isolation -e . >> "$OUT/install.log" 2>&1
# 1. the device certificates against exact arithmetic, on the GPU (default device there)
step tests-devicecert 120 python -m pytest -q -x tests/test_device_certs.py tests/test_closed_forms.py
# 2. certificates: throughput and whole runs, host against device (sets Settings.certify_on_device)
step devicecert-gpu 150 python experiments/bench_devicecert.py --device gpu --out "$OUT"
# 3. mnist_10x12 on the GPU with the new split cap: regions/s, cold start, host peak memory
step mnist-gpu 240 /usr/bin/time -v python -m lrenum enumerate experiments/models/mnist_10x12.npz --device gpu --json -q
# 4. the low-dimensional networks of the issue on the GPU and on the machine's own CPU
step lowd-gpu 150 python experiments/bench_lowd.py --device gpu --no-lp --cases b-d3-48x48x48 b-d4-24x24x24 --out "$OUT"
step lowd-cpu 150 python experiments/bench_lowd.py --device cpu --no-lp --cases b-d3-48x48x48 b-d4-24x24x24 --out "$OUT"
