"""The sparse-matrix Radon pair: adjoint, scikit-image's geometry, one product for all slices."""

import numpy as np
import pytest
import scipy.sparse as sp
from skimage.transform import radon as sk_radon

from twin.operators import radon

RNG = np.random.default_rng(3)


def _disc_image(n):
    yy, xx = np.mgrid[:n, :n] - n // 2
    img = ((xx ** 2 + yy ** 2 < (0.4 * n) ** 2) * (1 + 0.3 * np.sin(xx / 3.0))
           + (((xx - 4) ** 2 + (yy + 3) ** 2) < 16))
    return img.astype(np.float32)


@pytest.mark.parametrize("n", [32, 33])
def test_matches_skimage_radon_at_any_angles(n):
    img = _disc_image(n)
    theta = np.sort(RNG.uniform(0, 360, 17))          # off-grid angles, beyond 180° too
    ours = radon.Radon(n, theta).fwd(img)
    ref = sk_radon(img, theta, circle=True).T
    assert np.max(np.abs(ours - ref)) < 1e-3 * np.max(np.abs(ref))


@pytest.mark.parametrize("n", [24, 25])
def test_dot_product_adjoint_images_and_columns(n):
    theta = np.linspace(0, 180, 19, endpoint=False)
    op = radon.Radon(n, theta)
    x = RNG.standard_normal((3, n, n))
    y = RNG.standard_normal((3, len(theta), n))
    lhs = np.sum(op.fwd(x) * y)
    rhs = np.sum(x * op.adj(y))
    assert lhs == pytest.approx(rhs, rel=1e-10)       # float64 in, float64 arithmetic
    xc = RNG.standard_normal((n * n, 4)).astype(np.float32)
    yc = RNG.standard_normal((len(theta) * n, 4)).astype(np.float32)
    lhs = np.sum(op.fwd_cols(xc).astype(np.float64) * yc)
    rhs = np.sum(xc.astype(np.float64) * op.adj_cols(yc))
    assert lhs == pytest.approx(rhs, rel=1e-4)


def test_all_slices_at_once_equal_slice_by_slice_and_complex():
    n, theta = 20, np.linspace(0, 170, 12)
    op = radon.Radon(n, theta)
    vol = RNG.standard_normal((5, n, n)) + 1j * RNG.standard_normal((5, n, n))
    together = op.fwd(vol)
    for z in range(5):   # each slice against scikit-image, real and imaginary parts apart
        ref = (sk_radon(vol[z].real, theta, circle=True)
               + 1j * sk_radon(vol[z].imag, theta, circle=True)).T
        assert np.allclose(together[z], ref, atol=1e-3 * np.abs(ref).max())
    assert np.iscomplexobj(op.adj(together))


def test_matrix_is_cached_per_geometry_and_sparse():
    theta = np.linspace(0, 180, 30, endpoint=False)
    a, b = radon.Radon(40, theta), radon.Radon(40, theta.copy())
    assert a.A is b.A                                  # built once per geometry
    assert isinstance(a.A, sp.csr_matrix) and a.A.shape == (30 * 40, 40 * 40)
    assert a.A.nnz < 4 * 30 * 40 * 40                  # bilinear taps merged along each ray
    assert radon.Radon(40, theta[:-1]).A is not a.A


def test_angle_blocks_are_the_matrix_rows():
    n, theta = 16, np.linspace(0, 180, 7, endpoint=False)
    op = radon.Radon(n, theta)
    x = RNG.standard_normal((n * n, 2)).astype(np.float32)
    full = op.fwd_cols(x)
    for a, (Ab, AbT) in enumerate(op.angle_blocks()):
        assert np.allclose(Ab @ x, full[a * n:(a + 1) * n], atol=1e-5)
        single = radon.Radon(n, theta[a:a + 1]).fwd_cols(x)   # an independent one-angle matrix
        assert np.allclose(Ab @ x, single, atol=1e-5)
        y = RNG.standard_normal((n, 2))
        assert np.sum((Ab @ x) * y) == pytest.approx(np.sum(x * (AbT @ y)), rel=1e-5)


def test_gpu_matches_cpu(xp):
    n, theta = 32, np.linspace(0, 180, 20, endpoint=False)
    img = _disc_image(n)
    cpu = radon.Radon(n, theta).fwd(img)
    dev = radon.Radon(n, theta, xp=xp)
    out = dev.fwd(xp.asarray(img))
    back = dev.adj(out)
    get = (lambda a: a.get()) if hasattr(out, "get") else np.asarray
    assert np.allclose(get(out), cpu, atol=1e-4 * np.abs(cpu).max())
    assert np.allclose(get(back), radon.Radon(n, theta).adj(cpu), rtol=1e-4, atol=1e-3)
