"""The fused CPU kernels against the operator's array-module code (an independent
implementation of the same maths: separate passes with NumPy broadcasting)."""

import numpy as np
import pytest

from twin.core import kernels
from twin.operators import ptychography
from twin.recon import engines, modulus, positions

RNG = np.random.default_rng(3)

pytestmark = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not importable")


def crandn(*shape):
    return (RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)).astype(np.complex64)


def _both(monkeypatch, f):
    """f() on the fused kernels, then on the array-module code."""
    fused = f()
    monkeypatch.setattr(kernels, "AVAILABLE", False)
    try:
        return fused, f()
    finally:
        monkeypatch.setattr(kernels, "AVAILABLE", True)


def close(a, b, tol=2e-5):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    assert np.abs(a - b).max() <= tol * max(np.abs(b).max(), 1e-30)


@pytest.mark.parametrize("shift,integer", [("bilinear", False), ("cubic", False),
                                           ("cubic", True), ("fourier", True)])
def test_fused_operator_equals_array_code(monkeypatch, shift, integer):
    pos = RNG.uniform(3, 30, size=(11, 2))
    if integer:
        pos = np.round(pos)
    probe = crandn(2, 16, 16)
    op = ptychography.FarFieldPtychography(probe, pos, (52, 52), shift=shift, centred=False)
    assert op.fused
    obj, chi = crandn(52, 52), crandn(5, 2, 16, 16)
    sel = np.array([9, 0, 3, 4, 10])
    view = obj[2:50, 1:51]                                    # a strided view, as the engines pass
    vop = ptychography.FarFieldPtychography(probe, pos - (2, 1), view.shape, shift=shift,
                                            centred=False)

    def run():
        psi, patch, probes = op.exit_waves(obj, sel)
        w = np.empty((16, 16), np.float32)
        num_p = op.exit_adj_probe(chi, patch, sel, weight=w)
        target = np.zeros((52, 52), np.complex64)
        vt = target[2:50, 1:51]
        vop.exit_adj_object(chi, probes, sel, out=vt)
        return (psi, patch, num_p, w, *op.object_update_terms(chi, probes, sel),
                op.exit_adj_object(chi, probes, sel),
                op.illumination(probes, sel), target, *op.patch_gradients(obj, sel),
                vop.patches(view, sel))

    for a, b in zip(*_both(monkeypatch, run)):
        close(a, b)


@pytest.mark.parametrize("algorithm,noise", [("rpie", "gaussian"), ("lsqml", "poisson")])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("u", [1, 2])
def test_fused_modulus_equals_array_code(monkeypatch, algorithm, noise, masked, u):
    # u = 2: frames measured with 2×2 binning of the model's fine far field (upsampling)
    class St:
        xp = np
        bg = None                       # no background: the fused path

    st = St()
    st.u = u
    nd = 16
    mask = (RNG.uniform(size=(nd, nd)) > 0.2).astype(np.float32) if masked else np.ones((nd, nd))
    st.mask, st.all_valid = mask.astype(np.float32), not masked
    st.mask_kernel = st.mask if masked else np.ones((1, 1), np.float32)
    far = crandn(6, 3, nd * u, nd * u)
    amp = RNG.uniform(0, 3 * u, size=(6, nd, nd)).astype(np.float32)
    opts = engines.Options(algorithm=algorithm, noise_model=noise)

    def run():
        f = far.copy()
        return modulus.far_correction(st, f, amp, opts), f

    (c1, f1), (c2, f2) = _both(monkeypatch, run)
    assert abs(c1 - c2) <= 1e-5 * abs(c2)
    close(f1, f2, 1e-4)


@pytest.mark.parametrize("with_probe", [False, True])
def test_fused_ls_steps_equal_array_code(with_probe):
    probe, d_obj, patch = crandn(2, 16, 16), crandn(7, 16, 16), crandn(7, 16, 16)
    d_probe = crandn(2, 16, 16)
    # a correction that is a known combination of the two directions, plus noise
    a, b = probe[None] * d_obj[:, None], d_probe[None] * patch[:, None]
    chi = (0.7 * a + 0.4 * b + 0.05 * crandn(7, 2, 16, 16)).astype(np.complex64)
    fused = engines._ls_steps_fused(probe, d_obj, d_probe if with_probe else None, patch, chi)
    ref = engines._ls_steps(a, b if with_probe else None, chi, np)
    np.testing.assert_allclose(fused[0], ref[0], rtol=1e-4)
    if with_probe:
        np.testing.assert_allclose(fused[1], ref[1], rtol=1e-4)
        assert np.all(np.abs(fused[0] - 0.7) < 0.05) and np.all(np.abs(fused[1] - 0.4) < 0.05)
    else:
        assert fused[1] is None


def test_scatter_is_deterministic():
    # the band-parallel scatter adds each pixel's terms in frame order: no race between threads
    pos = RNG.uniform(1, 40, size=(30, 2))
    op = ptychography.FarFieldPtychography(crandn(1, 16, 16), pos, (60, 60), shift="cubic")
    g = crandn(30, 16, 16)
    ref = op.patches_adj(g)
    again = op.patches_adj(g)
    assert np.array_equal(ref, again)


def test_fused_position_step_equals_array_code(monkeypatch):
    pos = RNG.uniform(3, 30, size=(9, 2))
    probe = crandn(2, 16, 16)
    op = ptychography.FarFieldPtychography(probe, pos, (52, 52), shift="cubic", centred=False)
    obj, chi = crandn(52, 52), crandn(9, 2, 16, 16)
    opts = engines.Options(max_position_step_px=50.0)
    fused, ref = _both(monkeypatch, lambda: positions.position_step(
        opts, *positions.position_dots(op, np.arange(9), obj, probe[None], chi)))
    np.testing.assert_allclose(fused, ref, rtol=1e-4, atol=1e-6)


def test_fused_operator_refuses_arrays_of_the_wrong_shape():
    # the kernels do not check bounds: the operator does, before it calls them
    pos = RNG.uniform(3, 30, size=(4, 2))
    op = ptychography.FarFieldPtychography(crandn(2, 16, 16), pos, (52, 52), shift="cubic")
    parent = crandn(52, 52)
    with pytest.raises(ValueError, match="shape"):
        op.patches(parent[:30, :30])
    with pytest.raises(ValueError, match="windows"):
        op.patches_adj(crandn(2, 16, 16))
    with pytest.raises(ValueError, match="shape"):
        op.patches_adj(crandn(4, 16, 16), out=np.zeros((30, 30), np.complex64))
    with pytest.raises(TypeError):
        op.patches_adj(crandn(4, 16, 16), out=np.zeros((52, 52), np.float32))
    with pytest.raises(ValueError):
        op.exit_adj_object(crandn(4, 3, 16, 16), op.probe[None])


def test_window_memo_sees_an_index_array_changed_in_place():
    pos = RNG.uniform(3, 30, size=(4, 2))
    op = ptychography.FarFieldPtychography(crandn(1, 16, 16), pos, (52, 52), shift="cubic")
    obj = crandn(52, 52)
    sel = np.array([0, 1])
    op.patches(obj, sel)
    sel[:] = [2, 3]
    np.testing.assert_array_equal(op.patches(obj, sel), op.patches(obj, np.array([2, 3])))


# --- the simulation's kernels (twin.core.simkernels) against the array code they replace ---

def _cplx(rng, *shape):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


@pytest.mark.parametrize("ramp", [False, True])
def test_sim_exit_product_equals_array_code(ramp):
    from twin.core import simkernels

    rng = np.random.default_rng(3)
    src, obj = _cplx(rng, 3, 2, 20, 20), _cplx(rng, 40, 50)
    inv = np.array([2, 0, 2, 1])
    org = np.array([[0, 0], [3, 30], [20, 11], [7, 7]])
    ry, rx = (_cplx(rng, 20), _cplx(rng, 20)) if ramp else (None, None)
    got = np.empty((4, 2, 20, 20), np.complex64)
    f = lambda a: a.view(np.float32)  # noqa: E731
    one = np.ones(20, np.complex64)
    simkernels.exit_product(f(src), inv, f(obj), org, f(one if ry is None else ry),
                            f(one if rx is None else rx), ramp, f(got))
    win = np.stack([obj[r:r + 20, c:c + 20] for r, c in org])
    if ramp:
        win = win * (ry[:, None] * rx[None, :])
    np.testing.assert_allclose(got, src[inv] * win[:, None], rtol=1e-5, atol=1e-5)


def test_sim_spectrum_ramp_and_gather_equal_array_code():
    from twin.core import simkernels

    rng = np.random.default_rng(4)
    f = lambda a: a.view(np.float32)  # noqa: E731
    q, ex = _cplx(rng, 5, 2, 8, 12), _cplx(rng, 3, 12)
    iq = np.array([4, 0, 4])
    got = np.empty((3, 2, 8, 12), np.complex64)
    simkernels.spectrum_ramp(f(q), iq, f(ex), f(got))
    np.testing.assert_allclose(got, q[iq] * ex[:, None, None, :], rtol=1e-5, atol=1e-6)
    a = _cplx(rng, 6, 8, 12)
    for off, S in [(0, 12), (9, 6), (3, 6), (11, 5)]:
        out = np.empty((6, 8, S), np.complex64)
        simkernels.gather_columns(f(a), off, f(out))
        assert np.array_equal(out, np.take(a, (np.arange(S) + off) % 12, axis=-1))


@pytest.mark.parametrize("s, offs", [(1, (0, 0)), (1, (5, 7)), (2, (13, 0)), (3, (2, 9))])
def test_sim_modulus_bin_equals_array_code(s, offs):
    from twin.core import simkernels

    rng = np.random.default_rng(5)
    h = _cplx(rng, 2, 3, 18, 18)
    n = 18 // s if s < 3 else 4
    out = np.empty((2, n, n), np.float32)
    simkernels.modulus_bin(h.view(np.float32), offs[0], offs[1], s, out)
    rows = (np.arange(s * n) + offs[0]) % 18
    cols = (np.arange(s * n) + offs[1]) % 18
    i = (np.abs(h[:, :, rows][:, :, :, cols]) ** 2).sum(axis=1)
    want = i.reshape(2, n, s, n, s).sum(axis=(2, 4))
    np.testing.assert_allclose(out, want, rtol=1e-5)
