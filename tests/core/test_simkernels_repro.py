"""The simulation's kernels give the same bits however they were compiled and run.

A frame's expected photons feed random draws whose number depends on them (Poisson by
rejection, photons placed one by one), so a last-bit change in one frame changes the counts of
the frames after it. The kernels must therefore be reproducible bit for bit: compiled afresh
or loaded from numba's cache, with any thread count.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from twin.core import simkernels

pytestmark = pytest.mark.skipif(not simkernels.AVAILABLE, reason="numba is not installed")

ROOT = Path(__file__).resolve().parents[2]


def _cplx(rng, *shape):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def test_modulus_bin_sums_in_source_order():
    """Bit for bit the float32 sums in the order the source writes them (per sample re² + im²,
    then over b, then the block sums over m and a): no order left to the compiler."""
    rng = np.random.default_rng(11)
    s, n, off_r, off_c = 3, 5, 4, 7
    h = _cplx(rng, 3, 2, 17, 19)
    got = np.empty((3, n, n), np.float32)
    simkernels.modulus_bin(h.view(np.float32), off_r, off_c, s, got)
    want = np.zeros((3, n, n), np.float32)
    for m in range(2):
        for a in range(s):
            rows = (np.arange(n) * s + a + off_r) % 17
            acc = np.zeros((3, n, n), np.float32)
            for b in range(s):
                v = h[:, m][:, rows][:, :, (np.arange(n) * s + b + off_c) % 19]
                acc += v.real * v.real + v.imag * v.imag
            want += acc
    assert np.array_equal(got, want)


def test_exit_product_multiplies_without_fused_operations():
    """Bit for bit the complex products as the source writes them (each product rounded)."""
    rng = np.random.default_rng(12)
    src, obj, ry, rx = _cplx(rng, 2, 2, 9, 11), _cplx(rng, 20, 30), _cplx(rng, 9), _cplx(rng, 11)
    inv, org = np.array([1, 0, 1]), np.array([[0, 0], [5, 13], [11, 19]])
    got = np.empty((3, 2, 9, 11), np.complex64)
    f = lambda a: a.view(np.float32)  # noqa: E731
    simkernels.exit_product(f(src), inv, f(obj), org, f(ry), f(rx), True, f(got))

    def mul(p, q):
        return p.real * q.real - p.imag * q.imag, p.real * q.imag + p.imag * q.real

    e = mul(rx[None, :], ry[:, None])
    win = np.stack([obj[r:r + 9, c:c + 11] for r, c in org])
    wr, wi = mul(win, e[0] + 1j * e[1])
    re, im = mul(src[inv], (wr + 1j * wi)[:, None])
    assert np.array_equal(got.real, re) and np.array_equal(got.imag, im)


_PROBE = """
import hashlib, numpy as np
from twin.core import simkernels as k
rng = np.random.default_rng(5)
h = (rng.standard_normal((4, 2, 24, 24)) + 1j * rng.standard_normal((4, 2, 24, 24))).astype(
    np.complex64)
out = np.empty((4, 12, 12), np.float32)
k.modulus_bin(h.view(np.float32), 3, 5, 2, out)
print(hashlib.sha1(out.tobytes()).hexdigest())
"""


def test_fresh_compilation_and_cached_code_agree(tmp_path):
    """The first process compiles and writes numba's cache, the second loads it (with another
    thread count): the same bits. With ``fastmath`` reassociation they differed."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), PYTHONPATH=str(ROOT))
    got = []
    for threads in ("2", "1"):
        env["NUMBA_NUM_THREADS"] = threads
        r = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True,
                           text=True, timeout=600, check=True)
        got.append(r.stdout.strip())
    assert any(tmp_path.rglob("*modulus_bin*.nbc")), "the first run wrote no cache"
    assert got[0] == got[1]
