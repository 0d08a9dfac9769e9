#!/usr/bin/env bash
# One prepared pass on a GPU machine (issue 11's GPU leftovers, issue 22): the CuPy path's tests,
# then the simulation's detector model on the GPU (its tests against the CPU path, and
# bench_simulate.py: frames/s against the GPU's FFT limit and the pre-issue-22 code, same run),
# then bench_recon.py (CPU section on that machine's cores, the same cases on the GPU, pty-chi on
# the same GPU), then one simulated calibration point reconstructed on the GPU against the shipped
# CPU value. Wheels the machine lacks travel in .whl/ (and hdf5plugin's bitshuffle filter alone
# in .h5p/); every step has its own time limit so a failure leaves the others' output.
#
#   bash benchmarks/gpu_check.sh OUTDIR
#
# Environment: SIM_ARGS (default "--frames 2048 --brain-frames 64 --repeat 2"), BENCH_ARGS (default "--iterations 20"; add --gpu-only to skip the CPU section),
# PROFILE=1 (a cProfile of the host side of a GPU rPIE), SKIP_POINT=1 (no calibration point).
# On a machine without twin's dependencies, put their cp312 manylinux wheels in .whl/ (pip
# download --no-deps --only-binary=:all: xraylib pydantic pydantic_core annotated-types
# typing-inspection dask distributed partd locket tblib tornado zict ptychi) and hdf5plugin's
# package with only plugins/libh5bshuf.so in .h5p/ (the full wheel is 46 MB).
set -u
OUT=${1:-/tmp/gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 NUMBA_CACHE_DIR=/tmp/numba TWIN_CACHE_DIR=/tmp/twin-cache
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl >"$OUT/pip.txt" 2>&1 || echo "pip failed" >&2
fi
export PYTHONPATH=/tmp/site:$PWD/.h5p:$PWD
{
  date; nvidia-smi -L; nproc
  python3 -c "import numpy, scipy, numba, cupy, torch; print('numpy', numpy.__version__, 'scipy', scipy.__version__, 'numba', numba.__version__, 'cupy', cupy.__version__, 'torch', torch.__version__)"
  python3 -c "import twin.core.xp as x; print('gpu_available', x.gpu_available())"
} 2>&1 | tee "$OUT/env.txt"
echo "== tests with the cupy parameter" | tee "$OUT/tests.txt"
timeout 170 python3 -m pytest -q -p no:cacheprovider --continue-on-collection-errors \
  -k cupy -rf tests/ 2>&1 | grep -v "Cannot initialize filter" | tail -40 | tee -a "$OUT/tests.txt"
echo "== simulation on the GPU (issue 22)" | tee "$OUT/simulate.txt"
timeout 150 python3 -m pytest -q -p no:cacheprovider -rf tests/workflows/test_simulate.py \
  -k "gpu or device or one_forward" tests/operators/test_farfield.py 2>&1 \
  | grep -v "Cannot initialize filter" | tail -15 | tee -a "$OUT/simulate.txt"
TWIN_SIM_BACKEND=cupy timeout 200 python3 benchmarks/bench_simulate.py \
  ${SIM_ARGS:---frames 2048 --brain-frames 64 --repeat 2} 2>&1 \
  | grep -v "Cannot initialize filter" | tee -a "$OUT/simulate.txt"
echo "== bench_recon" | tee "$OUT/bench.txt"
timeout 260 python3 benchmarks/bench_recon.py ${BENCH_ARGS:---iterations 20} 2>&1 \
  | grep -v "it/s\]\|frame-it \[\|Cannot initialize filter" | tee -a "$OUT/bench.txt"
if [ -n "${PROFILE:-}" ]; then
  echo "== host profile of a GPU rPIE (128², 4 modes, batch 256)" | tee "$OUT/profile.txt"
  timeout 90 python3 - <<'PY' 2>&1 | grep -v "Cannot initialize filter" | tee -a "$OUT/profile.txt"
import cProfile, pstats, sys
sys.path.insert(0, "benchmarks")
from bench_recon import synthetic
import twin.recon as engines
d = synthetic(128, 4, 2048)
o = engines.Options(algorithm="rpie", iterations=5, modes=4, batch_size=256, backend="cupy")
engines.reconstruct(d, engines.Options(algorithm="rpie", iterations=1, modes=4,
                                       batch_size=256, backend="cupy"))
pr = cProfile.Profile()
pr.enable()
r = engines.reconstruct(d, o)
pr.disable()
print("frame-it/s", 2048 * 5 / r.timings["seconds"])
pstats.Stats(pr).sort_stats("tottime").print_stats(22)
PY
fi
[ -n "${SKIP_POINT:-}" ] && exit 0
echo "== a calibration point on the GPU" | tee "$OUT/point.txt"
timeout 120 python3 - <<'PY' 2>&1 | grep -v "Cannot initialize filter" | tee -a "$OUT/point.txt"
import json, time
from twin import scenario
from twin.workflows import simres
s = scenario.load("scenarios/brain_phantom_eiger_3khz.toml")
key = simres._key_2d(s, s.seed, None, simres.PATCH_POINTS)
shipped = json.loads((simres.SHIPPED / f"{key}.json").read_text())
t0 = time.perf_counter()
m = simres.measure(s, s.seed, use_cache=False)
print(f"GPU: d = {m.resolution_simulated_m * 1e9:.1f} nm, halves {m.frc_halves_m * 1e9:.1f} nm, "
      f"PCC {m.pcc_simulated:.4f}, {time.perf_counter() - t0:.1f} s")
print(f"shipped (2-core CPU): d = {shipped['resolution_simulated_m'] * 1e9:.1f} nm, halves "
      f"{shipped['frc_halves_m'] * 1e9:.1f} nm, PCC {shipped['pcc_simulated']:.4f}, "
      f"{shipped['seconds']:.1f} s")
PY
date | tee -a "$OUT/point.txt"
