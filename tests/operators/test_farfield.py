"""The fine-grid detector model (twin.operators.farfield): adjoints, closed forms, the pruned
transform against the full one, and the fused CPU path against the array code."""

import numpy as np
import pytest

from twin.operators import farfield as ff
from twin.operators.multislice import Multislice
from twin.operators.propagation import Propagator
from twin.operators.ptychography import subpixel_shift

RNG = np.random.default_rng(7)


def _c(*shape):
    return (RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)).astype(np.complex64)


def _dot(a, b):
    return np.vdot(a.astype(np.complex128).ravel(), b.astype(np.complex128).ravel())


@pytest.mark.parametrize("s, n, N", [(1, 8, 8), (2, 4, 16), (3, 3, 27), (2, 5, 24)])
def test_far_field_is_the_cropped_centred_dft(s, n, N):
    """The pruned transform equals the full one (NumPy, double precision): the half-bin ramp,
    the centred DFT, the central s·n samples from N//2 − s·(n//2)."""
    psi = _c(2, N, N)
    a = (s - 1) / 2
    x = np.arange(N)
    ramp = np.exp(2j * np.pi * a * (x[:, None] + x[None, :]) / N)
    full = np.fft.fftshift(np.fft.fft2(psi.astype(np.complex128) * ramp, norm="ortho"),
                           axes=(-2, -1))
    c = N // 2 - s * (n // 2)
    want = full[:, c:c + s * n, c:c + s * n]
    got = ff.far_field(psi, s, n)
    assert got.shape == (2, s * n, s * n)
    np.testing.assert_allclose(got, want, atol=2e-5 * np.abs(want).max())


@pytest.mark.parametrize("s, n, N", [(1, 8, 8), (2, 4, 16), (3, 2, 18)])
def test_far_field_adjoint_and_parseval(s, n, N):
    psi, g = _c(3, N, N), _c(3, s * n, s * n)
    lhs = _dot(ff.far_field(psi, s, n), g)
    rhs = _dot(psi, ff.far_field_adj(g, s, N))
    assert lhs == pytest.approx(rhs, rel=1e-5)
    # Parseval: a wave whose spectrum lies inside the crop keeps its norm
    band = ff.far_field_adj(g, s, N)
    assert np.linalg.norm(ff.far_field(band, s, n)) == pytest.approx(np.linalg.norm(g), rel=1e-5)
    assert np.linalg.norm(band) == pytest.approx(np.linalg.norm(g), rel=1e-5)


def test_binning_adjoint_and_photon_count():
    s, n, N = 3, 4, 36
    inten = RNG.random((2, N, N)).astype(np.float32)
    pix = RNG.random((2, n, n)).astype(np.float32)
    b = ff.bin_far_field(inten, s, n)
    assert _dot(b, pix).real == pytest.approx(_dot(inten, ff.bin_far_field_adj(pix, s, N)).real,
                                              rel=1e-5)
    c = N // 2 - s * (n // 2)
    assert b.sum() == pytest.approx(inten[:, c:c + s * n, c:c + s * n].sum(), rel=1e-5)


def _operator(L=3, s=2, n=4, M=2, fused=None, quantum=1 / 32):
    N = s * s * n
    probes = _c(M, N, N)
    slices = np.exp(1j * RNG.random((L, 40, 44)) - 0.1 * RNG.random((L, 40, 44))).astype(
        np.complex64)
    return ff.FineFarField(probes, slices, s, n, pixel_m=10e-9, slice_spacing_m=2e-6,
                           wavelength_m=1e-10, quantum=quantum, fused=fused)


@pytest.mark.parametrize("fused", [None, False])
def test_operator_adjoint(fused):
    op = _operator(fused=fused)
    org = np.array([[0, 3], [5, 10], [20, 26]])
    u = _c(3, 2, op.N, op.N)
    g = _c(3, 2, op.s * op.n, op.s * op.n)
    assert _dot(op.fwd(u, org), g) == pytest.approx(_dot(u, op.adj(g, org)), rel=1e-4)
    e = _c(3, 2, op.N, op.N)
    assert _dot(op.exit_fwd(u, org), e) == pytest.approx(_dot(u, op.exit_adj(e, org)), rel=1e-4)


def test_exit_waves_are_multislice():
    """The windowed exit waves equal the Multislice operator's on each cut-out window."""
    op = _operator(L=3)
    org = np.array([[2, 7], [11, 1]])
    u = _c(2, 2, op.N, op.N)
    got = op.exit_fwd(u, org)
    prop = Propagator((op.N, op.N), 10e-9, 2e-6, 1e-10)
    for k, (r, c) in enumerate(org):
        ms = Multislice(op.slices[:, r:r + op.N, c:c + op.N], prop)
        np.testing.assert_allclose(got[k], ms.fwd(u[k]), atol=1e-4 * np.abs(got[k]).max())


def test_shifted_probes_are_fourier_shifts():
    """Separable, cached shifts against the 2D Fourier shift; no shift gives the probes."""
    probes = _c(2, 16, 16)
    sp = ff.ShiftedProbes(probes, quantum=1 / 8, cache_bytes=3 * probes.nbytes)
    frac = np.array([[0.25, 0.5], [0.0, 0.0], [0.26, 0.49], [0.875, 0.125], [1.0, 0.3]])
    for _ in range(2):                               # the second time from the cache
        src, inv = sp.lookup(frac)
        assert len(src) == 4 and inv[0] == inv[2]
        for k, f in enumerate(frac):
            q = np.round(f * 8) / 8
            want = subpixel_shift(probes.astype(np.complex128), q)
            np.testing.assert_allclose(src[inv[k]], want, atol=2e-5 * np.abs(want).max())
    assert np.array_equal(src[inv[1]], probes)
    # the GPU's array code gives the same shifts
    arr, inv2 = ff.ShiftedProbes(probes, quantum=1 / 8, fused=False).lookup(frac)
    np.testing.assert_allclose(arr[inv2], src[inv], atol=1e-5 * np.abs(src).max())


@pytest.mark.parametrize("L, s", [(1, 1), (1, 2), (3, 2), (2, 3)])
def test_intensity_is_binned_modulus_of_fwd(L, s):
    """intensity = bin(Σ_m |fwd(shifted probes)|²), and the fused CPU path equals the array
    code (what a GPU runs) on the same inputs."""
    op = _operator(L=L, s=s, n=2 if s == 3 else 4)
    tl = np.array([[1.3, 2.7], [9.0, 4.25], [15.6, 20.01]])
    got = op.intensity(tl)
    org, frac = op.windows(tl)
    src, inv = op.shifted.lookup(frac)
    g = op.fwd(src[inv], org)
    want = ff.bin_far_field((np.abs(g) ** 2).sum(axis=1), op.s, op.n)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * want.max())
    arr = ff.FineFarField(op.probes, op.slices, op.s, op.n, 10e-9, 2e-6, 1e-10, fused=False)
    np.testing.assert_allclose(arr.intensity(tl), got, rtol=1e-4, atol=1e-5 * got.max())
    assert op.transforms_per_frame == 2 * (2 * L - 1)


@pytest.mark.parametrize("s", [2, 3])
def test_gaussian_beam_far_field_closed_form(s):
    """A Gaussian beam on an empty object: its far field, integrated over each pixel, is a
    product of error-function differences (the midpoint rule with s² points: error ∝ 1/s²);
    every photon reaches the detector."""
    from scipy.special import erf

    n = 16
    N = s * s * n
    sq = 1.6                                          # far-field rms, detector pixels
    sig = N / (4 * np.pi * sq) / s                    # |FT|² rms 1/(4πσ) cycles per pixel
    x = np.arange(N) - N // 2
    amp = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (4 * sig ** 2))
    amp /= np.sqrt(np.sum(amp ** 2))
    op = ff.FineFarField(amp[None].astype(np.complex64), np.ones((1, N + 4, N + 4)), s, n)
    got = op.intensity(np.array([[2.0, 2.0]]))[0].astype(np.float64)
    k = np.arange(n) - n // 2
    cdf = 0.5 * (1 + erf((k[:, None] + np.array([-0.5, 0.5])) / (sq * np.sqrt(2))))
    row = cdf[:, 1] - cdf[:, 0]
    want = row[:, None] * row[None, :]
    assert got.sum() == pytest.approx(1.0, rel=1e-4)
    err = np.abs(got - want).max() / want.max()
    assert 0.01 / s ** 2 < err < 0.04 / s ** 2


def test_windows_outside_the_object_are_refused():
    op = _operator(L=1)
    with pytest.raises(ValueError, match="outside"):
        op.intensity(np.array([[30.0, 2.0]]))
    with pytest.raises(ValueError, match="outside"):
        op.intensity(np.array([[-0.5, 2.0]]))


def test_ramp_in_the_slice_or_in_the_kernel(monkeypatch):
    """The half-bin ramp folded into the last slice (a constant phase per window) or applied
    by the exit-wave kernel gives the same intensities."""
    op = _operator(L=2, s=2, n=4)
    tl = np.array([[1.3, 2.7], [9.0, 17.25], [15.6, 20.01]])
    folded = op.intensity(tl)
    monkeypatch.setattr(ff, "RAMPED_SLICE_BYTES", 0)
    np.testing.assert_allclose(op.intensity(tl), folded, rtol=1e-4, atol=1e-5 * folded.max())


def test_shift_caches_stay_within_their_memory():
    """With room for one y shift and one shifted probe, the shifts are recomputed, and equal."""
    probes = _c(2, 16, 16)
    big = ff.ShiftedProbes(probes, quantum=1 / 8)
    small = ff.ShiftedProbes(probes, quantum=1 / 8, cache_bytes=probes.nbytes,
                             row_bytes=probes.nbytes)
    frac = RNG.random((12, 2))
    for _ in range(2):
        a, ia = big.lookup(frac)
        b, ib = small.lookup(frac)
        assert len(small._rows) == 1 and len(small._cache) == 1
        np.testing.assert_array_equal(a[ia], b[ib])


@pytest.mark.parametrize("fused", [None, False])
def test_a_prefix_of_the_positions_gives_the_same_bits(fused):
    """Chunks of 2 windows (the device path pads the last one): the first frames of a longer
    call are bit for bit those of a shorter one (``--frames N``)."""
    op = _operator(L=2, s=2, n=4, fused=fused)
    op.chunk = 2
    tl = np.array([[1.3, 2.7], [9.0, 17.25], [15.6, 20.01], [3.2, 3.3], [7.7, 1.1]])
    full = op.intensity(tl)
    np.testing.assert_array_equal(op.intensity(tl[:3]), full[:3])
