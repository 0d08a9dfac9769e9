#!/usr/bin/env bash
# One prepared pass on a lent GPU machine for issue 10's last closed-form seeds: the 9-beam
# 1 mm³ plans. On 2 CPU cores a 9-beam multislice patch costs ~46 min (2304 beam-frames × 4
# blur samples × 3 modes × 57 FFTs of 512²), five fluences ~3.5 h per scenario; on a GPU the
# exit waves are computed there (twin.operators.farfield.FineFarField on CuPy) and the reconstruction too.
#
#   bash benchmarks/gpu_calibrate.sh OUTDIR
#
# Steps: the GPU-against-CPU intensity test (the calibration runs only if it passes on the GPU),
# then tools/ship_calibrations.py --all-models --reuse on each 9-beam scenario, all of them at
# once (WORKERS Dask workers each: the phantom's slabs are made on the CPU, the waves and the
# reconstructions on the one GPU). The shipped points (their F0) are reused; every point
# finished is cached at once in CACHE (default .gpu-cache/, kept on a warm machine, and carried
# to a fresh one), so a call cut short keeps its points and a second call computes only the
# rest. Back in OUTDIR: log.txt and simulated.tgz (the cache's entries: unpack into
# twin/data/simulated/ and set the scenarios' resolution.model = "simulated"). Run it with the
# device's timeout_s ≥ LIMIT_S + 90. Environment: WORKERS (default 4), SCENARIOS, LIMIT_S
# (calibration step, default 470).
set -u
OUT=${1:?usage: gpu_calibrate.sh OUTDIR}
CACHE=${CACHE:-$PWD/.gpu-cache}
LOG="$OUT/log.txt"
mkdir -p "$OUT" "$CACHE/simulated"
export PYTHONUNBUFFERED=1 NUMBA_CACHE_DIR=/tmp/numba TWIN_CACHE_DIR="$CACHE"
export TWIN_FFT_WORKERS=2      # CPU FFT threads per Dask worker (the GPU does the waves)
pack() { tar czf "$OUT/simulated.tgz" -C "$CACHE" simulated
         echo "$(ls "$CACHE"/simulated | wc -l) cache entries packed; $(date)" | tee -a "$LOG"; }
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl >"$OUT/pip.txt" 2>&1 || echo "pip failed" | tee -a "$LOG"
fi
export PYTHONPATH=/tmp/site:$PWD/.h5p:$PWD
{ date; nvidia-smi -L; nproc
  python3 -c "import twin.core.xp as x; print('gpu_available', x.gpu_available())"; } 2>&1 \
  | tee -a "$LOG"
echo "== GPU intensities against the CPU path" | tee -a "$LOG"
timeout 90 python3 -m pytest -q -p no:cacheprovider -rA \
  tests/workflows/test_simulate.py -k "device or gpu" >"$OUT/tests.txt" 2>&1
rc=$?
grep "PASSED\|FAILED\|SKIPPED\|passed\|failed" "$OUT/tests.txt" | tee -a "$LOG"
# the gate is the GPU's intensities against the CPU's (the NumPy run of the device code is
# reported, not a gate: its bits follow the CPU's SIMD)
if ! grep -q "PASSED.*test_gpu_intensities_match_cpu" "$OUT/tests.txt"; then
  echo "the GPU path did not pass its test (rc $rc): no calibration" | tee -a "$LOG"
  pack; exit 1
fi
echo "== calibrations (reuse the shipped points)" | tee -a "$LOG"
(while sleep 30; do nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader; done \
  >"$OUT/gpu.txt" 2>&1) &
mon=$!
pids=()
for s in ${SCENARIOS:-scenarios/brain_1mm3_dlsr_multibeam.toml scenarios/brain_1mm3_dlsr_multibeam_relaxed.toml}; do
  n=$(basename "$s" .toml)
  # to a file, not a pipe: a Dask worker outliving its killed parent cannot hold the call open
  timeout -k 15 "${LIMIT_S:-470}" python3 tools/ship_calibrations.py --all-models --reuse \
    --workers "${WORKERS:-4}" --cache "$CACHE" --out "/tmp/ship-$n" "$s" >"$OUT/cal-$n.txt" 2>&1 &
  pids+=($!)
done
wait "${pids[@]}"
kill $mon 2>/dev/null
for f in "$OUT"/cal-*.txt; do echo "-- $f"; tr '\r' '\n' <"$f" | grep -v "Cannot initialize filter" \
  | grep -v "pt/s\]" | tail -15; done 2>&1 | tee -a "$LOG"
pack
