"""The reconstruction's kernels give the same bits however they were compiled and run.

A reconstruction of one scenario and seed must give the same bytes after any edit of
:mod:`twin.core.kernels` (which makes numba compile it afresh) and with any thread count. With
``fastmath`` reassociation, ``frame_sum_conj`` and ``mode_sum_conj`` gave other last bits when
compiled afresh than when loaded from numba's cache.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from twin.core import kernels

pytestmark = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba is not installed")

ROOT = Path(__file__).resolve().parents[2]

# Odd sizes, so that the vectorised loops also run their scalar remainders.
_PROBE = """
import hashlib, numpy as np
from twin.core import kernels as k
rng = np.random.default_rng(5)
def c(*s):
    return (rng.standard_normal(s) + 1j * rng.standard_normal(s)).astype(np.complex64)
B, M, n = 5, 3, 37
patch, chi, probe = c(B, n, n), c(B, M, n, n), c(M, n, n)
out, w = np.empty((M, n, n), np.complex64), np.empty((n, n), np.float32)
k.frame_sum_conj(patch, chi, out, w)
g = np.empty((B, n, n), np.complex64)
k.mode_sum_conj(probe, chi, g)
dots = np.empty((B, 5))
k.ls_dots(probe, patch, c(M, n, n), c(B, n, n), chi, dots)
print(hashlib.sha1(b"".join(a.tobytes() for a in (out, w, g, dots))).hexdigest())
"""


def test_fresh_compilation_and_cached_code_agree(tmp_path):
    """The first process compiles and writes numba's cache, the second loads it (with another
    thread count): the same bits."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), PYTHONPATH=str(ROOT))
    got = []
    for threads in ("2", "1"):
        env["NUMBA_NUM_THREADS"] = threads
        r = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True,
                           text=True, timeout=300, check=True)
        got.append(r.stdout.strip())
    for name in ("frame_sum_conj", "mode_sum_conj", "ls_dots"):
        assert any(tmp_path.rglob(f"*{name}*.nbc")), f"the first run wrote no cache of {name}"
    assert got[0] == got[1]


def _cplx(rng, *shape):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def _run_all():
    """Every kernel once on fixed inputs (odd sizes, overlapping windows): their outputs."""
    rng = np.random.default_rng(9)
    b, m, n, k = 6, 3, 21, 4
    f = lambda a: a.view(np.float32)  # noqa: E731
    obj, probe, chi, g = _cplx(rng, 40, 45), _cplx(rng, m, n, n), _cplx(rng, b, m, n, n), \
        _cplx(rng, b, n, n)
    org = rng.integers(0, 40 - n - k - 2, (b, 2))
    wy, wx = rng.random((b, k)).astype(np.float32), rng.random((b, k)).astype(np.float32)
    res = [np.empty((b, n, n), np.complex64), np.empty((b, m, n, n), np.complex64),
           _cplx(rng, 40, 45), np.empty((b, n, n), np.complex64),
           np.empty((m, n, n), np.complex64), np.empty((n, n), np.float32),
           _cplx(rng, b, m, n, n), np.empty(b), np.empty((b, 5)), np.empty((b, 2)),
           np.empty((b, n - 2, n - 2), np.complex64), np.empty((b, n - 2, n - 2), np.complex64)]
    kernels.interp_exit(f(obj), org, wy, wx, f(probe), f(res[0]), f(res[1]))
    kernels.interp_scatter(f(res[2]), org, wy, wx, f(g), 2)
    kernels.mode_sum_conj(probe, chi, res[3])
    kernels.frame_sum_conj(g, chi, res[4], res[5])
    amp = rng.random((b, n, n)).astype(np.float32)
    kernels.modulus_update(f(res[6]), amp, (amp[0] > 0.2).astype(np.float32), True, 1,
                           res[7])
    kernels.ls_dots(probe, g, _cplx(rng, m, n, n), res[0], chi, res[8])
    kernels.direction_dots(probe, g, chi, res[9])
    kernels.central_differences(f(res[0]), f(res[10]), f(res[11]))
    return res


def test_thread_count_does_not_change_bits():
    """With one thread and with several, every kernel's output is the same bits (no sum whose
    order follows the split of the work between threads)."""
    import numba

    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = _run_all()
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = _run_all()
    finally:
        numba.set_num_threads(before)
    for a, b in zip(one, many):
        assert np.array_equal(a.view(np.uint8), b.view(np.uint8))
