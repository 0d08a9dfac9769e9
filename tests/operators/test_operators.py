"""Dot-product (adjoint) tests, Parseval and closed forms for every operator."""

import numpy as np
import pytest

from twin.operators import multislice

from twin.operators import propagation

from twin.operators import ptychography

from twin.operators import radon

RNG = np.random.default_rng(0)


def crandn(*shape):
    return (RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)).astype(np.complex64)


def vdot(a, b):
    return np.vdot(a.ravel().astype(np.complex128), b.ravel().astype(np.complex128))


def assert_adjoint(fwd, adj, x, y, rtol=2e-4):
    lhs, rhs = vdot(fwd(x), y), vdot(x, adj(y))
    assert abs(lhs - rhs) <= rtol * max(abs(lhs), abs(rhs))


def test_farfield_parseval_and_centre():
    u = crandn(3, 32, 32)
    U = propagation.farfield_fwd(u)
    assert np.sum(np.abs(U) ** 2) == pytest.approx(np.sum(np.abs(u) ** 2), rel=1e-5)
    flat = np.ones((16, 16), np.complex64)
    F = propagation.farfield_fwd(flat)
    assert np.argmax(np.abs(F)) == np.ravel_multi_index((8, 8), (16, 16))   # DC at centre
    assert_adjoint(propagation.farfield_fwd, propagation.farfield_adj, u, crandn(3, 32, 32))
    assert np.allclose(propagation.farfield_adj(U), u, atol=1e-5)


@pytest.mark.parametrize("method", ["angular_spectrum", "fresnel"])
def test_propagator_adjoint_and_parseval(method):
    p = propagation.Propagator((64, 64), 20e-9, 5e-6, 1e-10, method=method)
    assert_adjoint(p.fwd, p.adj, crandn(2, 64, 64), crandn(2, 64, 64))
    u = crandn(64, 64)
    # all frequencies propagate at this sampling (λ/dx ≪ 1): both are unitary
    assert np.sum(np.abs(p.fwd(u)) ** 2) == pytest.approx(np.sum(np.abs(u) ** 2), rel=1e-4)
    assert np.allclose(p.adj(p.fwd(u)), u, atol=1e-4)
    # the in-place form (what simulate and the multislice engine run) is the same operator:
    # the same bits, hence the same adjoint pair
    a = crandn(2, 64, 64).astype(np.complex64)
    for op in (p.fwd, p.adj):
        ref = op(a)
        np.testing.assert_array_equal(op(a.copy(), overwrite=True), ref)
    assert_adjoint(lambda x: p.fwd(x.copy(), overwrite=True),
                   lambda y: p.adj(y.copy(), overwrite=True), crandn(2, 64, 64),
                   crandn(2, 64, 64))


def test_fresnel_matches_angular_spectrum_paraxially():
    # a smooth Gaussian beam: paraxial and exact propagators agree
    y, x = np.mgrid[-64:64, -64:64] * 50e-9
    u = np.exp(-(x ** 2 + y ** 2) / (2 * (0.6e-6) ** 2)).astype(np.complex64)
    a = propagation.Propagator(u.shape, 50e-9, 20e-6, 1e-10, "angular_spectrum").fwd(u)
    f = propagation.Propagator(u.shape, 50e-9, 20e-6, 1e-10, "fresnel").fwd(u)
    assert np.max(np.abs(a - f)) < 1e-3 * np.max(np.abs(u))


def test_gaussian_beam_spreads_as_closed_form():
    # w(z) = w0·√(1 + (z/zR)²), zR = π w0²/λ (1/e² intensity radius)
    lam, dx, w0 = 1e-10, 20e-9, 0.2e-6
    y, x = np.mgrid[-256:256, -256:256] * dx
    u = np.exp(-(x ** 2 + y ** 2) / w0 ** 2).astype(np.complex64)
    zr = np.pi * w0 ** 2 / lam
    v = propagation.Propagator(u.shape, dx, 2 * zr, lam, "fresnel").fwd(u)
    i = np.abs(v) ** 2
    r2 = np.sum(i * (x ** 2 + y ** 2)) / np.sum(i)       # second moment = w²/2
    assert np.sqrt(2 * r2) == pytest.approx(w0 * np.sqrt(5), rel=1e-3)


@pytest.mark.parametrize("frac", [False, True])
def test_ptychography_adjoints(frac):
    probe = crandn(2, 16, 16)
    pos = RNG.uniform(0, 24, size=(7, 2))
    if not frac:
        pos = np.round(pos)
    op = ptychography.FarFieldPtychography(probe, pos, (40, 40))
    obj = crandn(40, 40)
    psi = crandn(7, 2, 16, 16)
    assert_adjoint(op.fwd, op.adj, obj, psi)
    assert_adjoint(lambda p: op.fwd_probe(p, obj), lambda y: op.adj_probe(y, obj), probe, psi)


def test_ptychography_frames_conserve_photons():
    probe = crandn(3, 16, 16)
    op = ptychography.FarFieldPtychography(probe, [[4, 4], [10.5, 3.25]], (32, 32))
    phase_only = np.exp(1j * RNG.uniform(0, 6, (32, 32))).astype(np.complex64)
    frames = op.intensity(phase_only)
    # a pure-phase object transmits all photons: Σ frame = Σ_m ‖P_m‖² (Parseval)
    assert frames.sum(axis=(1, 2)) == pytest.approx(
        [np.sum(np.abs(probe) ** 2)] * 2, rel=1e-4)


def test_translations_round_trip():
    pos = np.array([[3.0, 5.5], [10.0, 2.0]])
    t = ptychography.translations_from_positions(pos, 10e-9, (64, 80), (16, 16))
    back = ptychography.positions_from_translations(t, 10e-9, (64, 80), (16, 16))
    assert np.allclose(back, pos)
    # a probe centred on the object's centre pixel has translation 0
    centred = [[64 // 2 - 8, 80 // 2 - 8]]
    assert np.allclose(ptychography.translations_from_positions(centred, 1, (64, 80), (16, 16)), 0)


def test_multislice_adjoint_and_gradient():
    prop = propagation.Propagator((32, 32), 10e-9, 200e-9, 1e-10)
    slices = np.exp(1j * RNG.uniform(0, 1, (4, 32, 32)) - RNG.uniform(0, 0.1, (4, 32, 32)))
    ms = multislice.Multislice(slices.astype(np.complex64), prop)
    assert_adjoint(ms.fwd, ms.adj, crandn(3, 32, 32), crandn(3, 32, 32))
    # gradient of ½‖exit − target‖² with respect to slice 1, against a finite difference
    # in double precision: the finite difference is ~1e-5 of the cost
    ms = multislice.Multislice(slices.astype(np.complex128), prop)
    wave, target = crandn(32, 32).astype(np.complex128), crandn(32, 32).astype(np.complex128)
    res = ms.fwd(wave) - target
    g = multislice.slice_gradients(ms, wave, res)[1]
    d = crandn(32, 32).astype(np.complex128) * 1e-4
    plus, minus = slices.astype(np.complex128), slices.astype(np.complex128)
    plus[1] += d
    minus[1] -= d
    def f(s):
        return 0.5 * np.sum(np.abs(multislice.Multislice(s, prop).fwd(wave) - target) ** 2)

    # central difference: exact to second order
    assert (f(plus) - f(minus)) / 2 == pytest.approx(np.real(vdot(g, d)), rel=1e-3)


def test_multislice_thin_limit_is_projection():
    # as Δz → 0 the exit wave is the incident wave times the product of the slices
    prop = propagation.Propagator((32, 32), 50e-9, 1e-12, 1e-10)
    slices = np.exp(1j * RNG.uniform(0, 0.5, (5, 32, 32))).astype(np.complex64)
    wave = crandn(32, 32)
    ms = multislice.Multislice(slices, prop)
    assert np.allclose(ms.fwd(wave), wave * np.prod(slices, axis=0), atol=1e-4)


def test_radon_matches_skimage_and_is_adjoint():
    from skimage.transform import radon as sk_radon

    n = 33
    yy, xx = np.mgrid[:n, :n] - n // 2
    img = ((xx ** 2 + yy ** 2 < 12 ** 2) * (1 + 0.3 * np.sin(xx / 3.0))
           + (((xx - 4) ** 2 + (yy + 3) ** 2) < 16)).astype(np.float32)
    theta = np.linspace(0, 180, 24, endpoint=False)
    op = radon.Radon(n, theta)
    ours = op.fwd(img)                                  # (angles, n)
    ref = sk_radon(img, theta, circle=True).T
    assert np.max(np.abs(ours - ref)) < 1e-3 * np.max(np.abs(ref)) + 1e-4
    x = RNG.standard_normal((2, n, n)).astype(np.float32)
    y = RNG.standard_normal((2, len(theta), n)).astype(np.float32)
    lhs = np.sum(op.fwd(x).astype(np.float64) * y)
    rhs = np.sum(x.astype(np.float64) * op.adj(y))
    assert lhs == pytest.approx(rhs, rel=1e-4)


@pytest.mark.parametrize("frac", [False, True])
def test_intensity_fast_path_equals_operator(frac):
    probe = crandn(2, 16, 16)
    pos = RNG.uniform(0, 24, size=(37, 2))
    if not frac:
        pos = np.round(pos)
    op = ptychography.FarFieldPtychography(probe, pos, (40, 40))
    obj = crandn(40, 40)
    ref = (np.abs(op.fwd(obj)) ** 2).sum(axis=1)
    for chunk in (None, 5):
        assert np.allclose(op.intensity(obj, chunk=chunk), ref, rtol=1e-4, atol=1e-3)


def test_quantized_subpixel_intensity_is_close():
    probe = crandn(1, 16, 16)
    pos = RNG.uniform(0, 24, size=(20, 2))
    exact = ptychography.FarFieldPtychography(probe, pos, (40, 40))
    quant = ptychography.FarFieldPtychography(probe, pos, (40, 40), subpixel_quantum=1 / 32)
    obj = np.exp(1j * RNG.uniform(0, 1, (40, 40))).astype(np.complex64)
    a, b = exact.intensity(obj), quant.intensity(obj)
    assert np.abs(a - b).sum() / a.sum() < 0.02


# --- the operator as the engines run it: batches, every sub-pixel model, both backends ------------


def _dev(xp, a):
    return xp.asarray(a)


def _host(a):
    from twin.core.xp import to_numpy

    return to_numpy(a)


@pytest.mark.parametrize("shift", ptychography.SHIFTS)
@pytest.mark.parametrize("centred", [True, False])
def test_batched_operator_adjoints(xp, shift, centred):
    probe = crandn(2, 16, 16)
    pos = RNG.uniform(2, 20, size=(9, 2))
    op = ptychography.FarFieldPtychography(_dev(xp, probe), pos, (40, 40), shift=shift,
                                           centred=centred)
    obj, psi = crandn(40, 40), crandn(4, 2, 16, 16)
    sel = np.array([7, 1, 4, 2])
    h = lambda f: (lambda a: _host(f(_dev(xp, a))))             # noqa: E731
    assert_adjoint(h(lambda o: op.fwd(o, sel)), h(lambda y: op.adj(y, sel)), obj, psi)
    dobj = _dev(xp, obj)
    assert_adjoint(h(lambda p: op.fwd_probe(p, dobj, sel)), h(lambda y: op.adj_probe(y, dobj, sel)),
                   probe, psi)
    # the pieces the engines compose: window reads and their adjoint, frame probes and theirs
    assert_adjoint(h(lambda o: op.patches(o, sel)), h(lambda p: op.patches_adj(p, sel)),
                   obj, crandn(4, 16, 16))
    assert_adjoint(h(lambda p: xp.broadcast_to(op.frame_probes(sel, p), (4, 2, 16, 16))),
                   h(lambda g: op.frame_probes_adj(g, sel)), probe, psi)


def test_subpixel_models_agree_on_smooth_objects():
    # a band-limited object: the interpolated reads and the exact Fourier shift give the same
    # frames (an exit-wave shift leaves |Ψ| unchanged); interpolation error grows with order⁻¹
    yy, xx = np.mgrid[:48, :48]
    obj = np.exp(1j * (np.sin(2 * np.pi * xx / 24) + np.cos(2 * np.pi * yy / 16))).astype(
        np.complex64)
    y, x = (np.mgrid[:16, :16] - 8) / 3.0
    probe = np.exp(-(x ** 2 + y ** 2))[None].astype(np.complex64)
    pos = RNG.uniform(4, 26, size=(12, 2))
    ref = ptychography.FarFieldPtychography(probe, pos, obj.shape).intensity(obj)
    err = {}
    for shift in ("bilinear", "cubic"):
        i = ptychography.FarFieldPtychography(probe, pos, obj.shape, shift=shift).intensity(obj)
        err[shift] = np.abs(i - ref).sum() / ref.sum()
    assert err["cubic"] < 0.01 and err["cubic"] < err["bilinear"] < 0.05


@pytest.mark.parametrize("shift", ptychography.SHIFTS)
def test_patch_gradients_match_the_closed_form(shift):
    # O = exp(i·sin(φ)), φ = 2π(x/19 + y/27): ∂O/∂y = i·cos(φ)·(2π/27)·O, read where the
    # operator reads the object (pos + r for interpolated reads, floor(pos) + r for Fourier)
    def phase(y, x):
        return 2 * np.pi * (x / 19 + y / 27)

    yy, xx = np.mgrid[:48, :48]
    obj = np.exp(1j * np.sin(phase(yy, xx))).astype(np.complex64)
    pos = RNG.uniform(6, 24, size=(5, 2))
    op = ptychography.FarFieldPtychography(crandn(1, 16, 16), pos, obj.shape, shift=shift)
    gy, gx = op.patch_gradients(obj)
    at = np.floor(pos) if shift == "fourier" else pos
    r = np.mgrid[:16, :16]
    y = at[:, 0, None, None] + r[0]
    x = at[:, 1, None, None] + r[1]
    o = np.exp(1j * np.sin(phase(y, x))) * 1j * np.cos(phase(y, x))
    for g, ref in ((gy, o * 2 * np.pi / 27), (gx, o * 2 * np.pi / 19)):
        # central differences over one pixel: ~(2π/19)²/6 ≈ 2 % of the derivative; bilinear
        # reads add their own error between grid points (7 % here)
        tol = 0.1 if shift == "bilinear" else 0.06
        assert np.abs(g - ref).max() < tol * np.abs(ref).max()


def test_add_windows_is_the_adjoint_of_cutting(xp):
    from twin.core.scatter import add_windows

    origins = RNG.integers(0, 20, size=(6, 2))
    obj, vals = crandn(30, 30), crandn(6, 8, 8)
    cut = np.stack([obj[r:r + 8, c:c + 8] for r, c in origins])
    out = _host(add_windows(xp.zeros((30, 30), xp.complex64), origins, _dev(xp, vals)))
    assert vdot(cut, vals) == pytest.approx(vdot(obj, out), rel=1e-5)


def test_window_index_cuts_the_windows_it_names(xp):
    # the device-built flat indices read the same windows as slicing (the operator's GPU path)
    from twin.core.scatter import window_index

    origins = RNG.integers(0, 20, size=(5, 2))
    obj = crandn(30, 33)
    idx = window_index(origins, (8, 6), 33, xp)
    got = _host(_dev(xp, obj).ravel()[idx])
    cut = np.stack([obj[r:r + 8, c:c + 6] for r, c in origins])
    assert np.array_equal(got, cut)


def test_multislice_gradients_entrance_is_adjoint(xp):
    prop = propagation.Propagator((16, 16), 10e-9, 200e-9, 1e-10, xp=xp)
    slices = np.exp(1j * RNG.uniform(0, 1, (3, 16, 16))).astype(np.complex64)
    ms = multislice.Multislice(_dev(xp, slices), prop)
    wave, res = crandn(2, 16, 16), crandn(2, 16, 16)
    waves, _ = ms.forward_waves(_dev(xp, wave))
    grads, entrance = ms.gradients(waves, _dev(xp, res))
    assert np.allclose(_host(entrance), _host(ms.adj(_dev(xp, res))), atol=1e-5)
    assert len(grads) == 3 and grads[0].shape == (2, 16, 16)
