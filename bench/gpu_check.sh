#!/usr/bin/env bash
# The GPU check: run on a machine with an NVIDIA GPU where CuPy, numba-cuda and PyTorch are
# already installed (no network needed). Within about 8 minutes it runs
#   1. the gpu-marked tests (every implementation against NumPy on the device),
#   2. compute-sanitizer memcheck, racecheck and initcheck on a small raw-kernel run,
#   3. gpunet bench lenet lstm conv2d lstm_step on CuPy with every kernel choice and the peers,
# and writes bench/results/gpu-<date>.json plus logs under bench/results/gpu-<date>/.
#
# usage: bash bench/gpu_check.sh [--help] [--out DIR] [--quick]
#   --out DIR   where results go (default: bench/results)
#   --quick     fewer benchmark repeats (for a short device lease)
# Exit codes: 0 all passed, 1 a step failed (see the summary), 3 no usable GPU here.
set -uo pipefail
cd "$(dirname "$0")/.."

out=bench/results
repeat=20
while [ $# -gt 0 ]; do
    case "$1" in
        --help|-h) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        --out) out=$2; shift 2 ;;
        --quick) repeat=5; shift ;;
        *) echo "gpu_check: error: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

PY=${PYTHON:-python}
if ! $PY -c "import gpunet, sys; ok, why = gpunet.gpu_status(); print(why); sys.exit(0 if ok else 3)"; then
    echo "gpu_check: no GPU: the CuPy backend is not usable here; nothing to check" >&2
    exit 3
fi
$PY -m pip install --quiet --no-deps -e . >/dev/null 2>&1 || true

stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
logs="$out/gpu-$stamp"
mkdir -p "$logs"
status=0
step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2; shift 2
    echo "== $name (limit ${limit}s)"
    if timeout "$limit" "$@" >"$logs/$name.log" 2>&1; then
        echo "   ok"
    else
        echo "   FAILED (exit $?): tail of $logs/$name.log"; tail -n 20 "$logs/$name.log"; status=1
    fi
}

nvidia-smi >"$logs/nvidia-smi.txt" 2>&1 || true
$PY -m gpunet.cli info --json >"$logs/info.json" 2>&1 || true

step pytest-gpu 240 $PY -m pytest -m gpu -q -x -p no:cacheprovider

smoke='import numpy, gpunet
from gpunet.ops import registry
gpunet.use("cupy")
import cupy
with gpunet.config.set_kernels("raw"):
    rng = numpy.random.default_rng(0)
    x = cupy.asarray(rng.standard_normal((4, 3, 12, 12), dtype=numpy.float32))
    w = cupy.asarray(rng.standard_normal((5, 3, 3, 3), dtype=numpy.float32))
    y = registry.lookup("conv2d_forward", "cupy")(x, w, (1, 1), (1, 1), (1, 1))
    registry.lookup("conv2d_backward_input", "cupy")(y, w, x.shape, (1, 1), (1, 1), (1, 1))
    registry.lookup("conv2d_backward_weight", "cupy")(x, y, w.shape, (1, 1), (1, 1), (1, 1))
    lstm = gpunet.nn.LSTM(8, 16).to("cupy")
    seq = gpunet.tensor(rng.standard_normal((5, 3, 8)))
    lstm(seq)[0].sum().backward()
    with gpunet.no_grad():
        lstm(seq)
    cupy.cuda.Device().synchronize()
print("raw-kernel smoke run done")'
if command -v compute-sanitizer >/dev/null 2>&1; then
    for tool in memcheck racecheck initcheck; do
        step "sanitizer-$tool" 90 compute-sanitizer --tool "$tool" --error-exitcode 9 $PY -c "$smoke"
    done
else
    echo "== compute-sanitizer not found: skipped"; status=1
fi

step bench 240 $PY -m gpunet.cli bench lenet lstm conv2d lstm_step --backend cupy \
    --kernels raw --kernels numba --kernels cupy --peers --repeat "$repeat" --json "$out/gpu-$stamp.json"

echo "gpu_check: results in $out/gpu-$stamp.json, logs in $logs/"
[ "$status" -eq 0 ] && echo "gpu_check: all steps passed" || echo "gpu_check: some steps FAILED"
exit "$status"
