#!/usr/bin/env bash
# One prepared pass on a lent GPU machine for issue 10's last closed-form seeds: the 9-beam
# 1 mm³ plans. On 2 CPU cores a 9-beam multislice patch costs ~40 min (2304 beam-frames × 4
# blur samples × 3 modes × 57 FFTs of 512²), five fluences ~3.5 h per scenario; on a GPU the
# exit waves are computed there (simulate.detector_intensity_xp) and the reconstruction too.
#
#   bash benchmarks/gpu_calibrate.sh OUTDIR
#
# Steps, each with its own time limit: the GPU-against-CPU intensity test, then
# tools/ship_calibrations.py --all-models on the 9-beam scenarios, whose entries are
# written to OUTDIR/simulated (copy them into twin/data/simulated/ and set the scenarios'
# resolution.model = "simulated"). Wheels the machine lacks travel in .whl/ and .h5p/ as for
# benchmarks/gpu_check.sh. Every finished point is cached at once (CACHE, default .gpu-cache/), so a call
# cut short keeps its points and a second call on the warm machine computes only the rest. Run it with the device's
# timeout_s ≥ 560 (the steps' limits add up to 540 s). Environment: WORKERS (Dask workers,
# default 5: the phantom's slabs are made on the CPU, the waves on the one GPU), SCENARIOS,
# LIMIT_S (calibration step, default 480).
set -u
OUT=${1:?usage: gpu_calibrate.sh OUTDIR}
# the cache lives in the working tree (kept on a warm machine between calls; $OUT is new each
# call) and its entries are copied to OUTDIR/simulated at the end of every call
CACHE=${CACHE:-$PWD/.gpu-cache}
mkdir -p "$OUT/simulated" "$CACHE"
export PYTHONUNBUFFERED=1 NUMBA_CACHE_DIR=/tmp/numba TWIN_CACHE_DIR="$CACHE"
export TWIN_FFT_WORKERS=3      # CPU FFT threads per Dask worker (the GPU does the waves)
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl >"$OUT/pip.txt" 2>&1 || echo "pip failed" >&2
fi
export PYTHONPATH=/tmp/site:$PWD/.h5p:$PWD
{ date; nvidia-smi -L; nproc
  python3 -c "import twin.core.xp as x; print('gpu_available', x.gpu_available())"; } 2>&1 \
  | tee "$OUT/env.txt"
echo "== GPU intensities against the CPU path" | tee "$OUT/tests.txt"
timeout 60 python3 -m pytest -q -p no:cacheprovider -rf \
  tests/workflows/test_simulate.py -k "device or gpu" 2>&1 | tail -5 | tee -a "$OUT/tests.txt"
echo "== calibrations" | tee "$OUT/calibrate.txt"
timeout "${LIMIT_S:-480}" python3 tools/ship_calibrations.py --all-models \
  --workers "${WORKERS:-5}" --cache "$CACHE" --out "$OUT/simulated" \
  ${SCENARIOS:-scenarios/brain_1mm3_dlsr_multibeam.toml scenarios/brain_1mm3_dlsr_multibeam_relaxed.toml} \
  2>&1 | grep -v "Cannot initialize filter\|pt/s\]" | tee -a "$OUT/calibrate.txt"
# entries finished before a time limit are kept: a second call computes only the rest
cp -n "$CACHE"/simulated/*.json "$OUT/simulated/" 2>/dev/null
ls "$OUT/simulated" | wc -l | tee -a "$OUT/calibrate.txt"
date | tee -a "$OUT/calibrate.txt"
