import numpy as np
import pytest

from twin.sample import materials

from twin.operators import multislice

from twin.sample import phantoms

from twin.operators import propagation
from twin.core.constants import wavelength_m


def test_uniform_slab_phase_shift_closed_form():
    # phase shift 2πδt/λ and amplitude exp(−μt/2) through a uniform slab
    t, e = 2e-6, 11.0
    p = materials.lookup("polycaprolactone", e)
    lam = float(wavelength_m(e))
    o = phantoms.transmission_from_projection((p.delta + 1j * p.beta) * t, e)
    assert np.angle(o) == pytest.approx(-2 * np.pi * p.delta * t / lam, rel=1e-5)
    assert np.abs(o) == pytest.approx(np.exp(-p.mu_per_m * t / 2), rel=1e-5)


@pytest.mark.parametrize("angle", [0.0, 33.0, 90.0])
def test_cylinder_projection_is_chord_length(angle):
    n, dx, r = 64, 0.1e-6, 2.5e-6
    cyl = phantoms.UniformCylinder("water", r, (2, n, n), dx)
    proj = cyl.projection([angle], 11.0, rows=[0])[0, 0]
    x = (np.arange(n) - n // 2) * dx
    chord = 2 * np.sqrt(np.clip(r * r - x * x, 0, None))
    d = materials.lookup("water", 11.0).delta
    centre = slice(n // 2 - 15, n // 2 + 16)
    assert np.allclose(proj.real[centre] / d, chord[centre], atol=1.5 * dx)
    # the projected volume (area) is conserved at every angle
    assert proj.real.sum() * dx / d == pytest.approx(np.pi * r * r, rel=0.03)


def test_fibre_bundle_is_deterministic_and_packed():
    kw = dict(shape=(16, 128, 128), voxel_size_m=0.8e-6, sample_diameter_m=100e-6)
    a, b = phantoms.FibreBundle(seed=3, **kw), phantoms.FibreBundle(seed=3, **kw)
    assert np.array_equal(a.row(5), b.row(5))
    assert not np.array_equal(a.row(5), phantoms.FibreBundle(seed=4, **kw).row(5))
    assert a.achieved_packing_fraction == pytest.approx(0.5, abs=0.05)
    labels = set(np.unique(a.row(0)))
    assert labels == {0, 1, 2, 3}
    # every fibre is hollow and inside the sample
    f = a.fibres
    assert np.all(f[:, 3] < f[:, 2])
    assert np.all(np.hypot(f[:, 0], f[:, 1]) + f[:, 2] <= 50e-6 + 1e-12)


def test_fibre_row_memory_is_one_slice():
    # 100 µm at 60 nm: a 1667² slice, never the 4.6e9-voxel volume
    fb = phantoms.FibreBundle(shape=(1667, 1667, 1667), voxel_size_m=60e-9,
                              sample_diameter_m=100e-6, seed=0)
    r = fb.row(800)
    assert r.shape == (1667, 1667) and r.dtype == np.uint8


def test_integrated_circuit_layers():
    ic = phantoms.IntegratedCircuit(shape=(32, 320, 480), voxel_size_m=14e-9,
                                    thickness_m=3.92e-6, n_layers=13, seed=2)
    assert ic.layer_thickness_m.sum() + ic.substrate_thickness_m == pytest.approx(3.92e-6)
    labels = ic.labels()
    assert {1, 2, 3, 4} <= set(np.unique(labels))
    depth = (labels[0, :, 0] > 0).sum() * 14e-9
    assert depth == pytest.approx(3.92e-6, abs=3 * 14e-9)
    # a plate 6.7 µm wide and 3.92 µm deep: edge-on (90°) it is thicker along the beam
    p = ic.projection([0.0, 90.0], 8.8, rows=[10])
    assert p[1].real.max() > p[0].real.max()


def test_multislice_of_thin_phantom_equals_projection():
    cyl = phantoms.UniformCylinder("polycaprolactone", 1e-6, (4, 32, 32), 50e-9)
    e = 11.0
    o = cyl.transmission(0.0, e, rows=range(4))
    slabs = cyl.slices(4, e, rows=range(4))
    assert np.allclose(np.prod(slabs, axis=0), o, atol=1e-5)
    # propagation over 4 × 0.4 µm slabs is negligible at this sampling: exit ≈ projection
    lam = float(wavelength_m(e))
    prop = propagation.Propagator((4, 32), 50e-9, 32 * 50e-9 / 4, lam)
    exit_wave = multislice.Multislice(slabs, prop).fwd(np.ones((4, 32), np.complex64))
    assert np.max(np.abs(exit_wave - o)) < 2e-2


def test_siemens_star():
    s = phantoms.siemens_star_transmission((128, 128), 50e-9, 11.0, spokes=16)
    assert s.dtype == np.complex64
    ph = np.angle(s)
    assert ph.min() < -0.3 and np.abs(s).max() <= 1.0
    # half of the star's disc is spokes
    t = phantoms.siemens_star_thickness((128, 128), 50e-9, 16, 2.5e-6, 1.0)
    yy, xx = (np.mgrid[:128, :128] - 64) * 50e-9
    disc = xx ** 2 + yy ** 2 < (2.3e-6) ** 2
    assert t[disc].mean() == pytest.approx(0.5, abs=0.02)


# --- registry -------------------------------------------------------------------------------

def _sample(phantom="uniform", **kw):
    from twin import scenario

    base = dict(phantom=phantom, shape="box", width_um=4.0, depth_um=3.0, height_um=4.0,
                material="si3n4")
    base.update(kw)
    return scenario.Sample(**base)


def test_registry_names_and_unknown():
    from twin.core.errors import TwinInputError

    assert {"uniform", "siemens_star", "fibre_bundle", "integrated_circuit"} <= set(
        phantoms.registered())
    grid = phantoms.Grid(np.zeros(1), np.zeros(1), 1e-8, 10.0)
    with pytest.raises(TwinInputError, match="sample.phantom"):
        phantoms.projected_slabs("teapot", None, phantoms.Extent("box", 1, 1, 1), grid)


@pytest.mark.parametrize("angle", [0.0, 30.0, 90.0])
def test_uniform_slabs_sum_to_the_chord(angle):
    """A box's slabs add up to its chord length (twin.sample.dose's independent chords)."""
    from twin.sample import dose, materials

    smp = _sample()
    ext = phantoms.Extent("box", 4e-6, 3e-6, 4e-6)
    x = np.linspace(-3e-6, 3e-6, 61)
    grid = phantoms.Grid(np.zeros(1), x, 1e-7, 10.0, angle_deg=angle, n_slices=5)
    slabs = phantoms.projected_slabs("uniform", smp, ext, grid)
    m = materials.lookup("si3n4", 10.0)
    chord = dose.chord_lengths_m("box", 4e-6, 3e-6, 0.0, np.deg2rad([angle]), s_m=x)[0]
    assert np.allclose(slabs.sum(axis=0)[0].real / m.delta, chord, atol=1e-12)
    # the path is shared among the slabs (not all in one) where the sample is thick
    assert np.count_nonzero(np.abs(slabs[:, 0, 30]) > 0) >= 3


def test_fibre_slabs_sum_to_the_analytic_projection():
    from twin import scenario

    smp = _sample("fibre_bundle", shape="cylinder", width_um=None, depth_um=None,
                  diameter_um=30.0, height_um=10.0, material="water",
                  fibres=scenario.FibreBundle())
    ext = phantoms.Extent("cylinder", 30e-6, 30e-6, 10e-6)
    y, x = np.linspace(-1e-6, 1e-6, 3), np.linspace(-16e-6, 16e-6, 81)
    grid = phantoms.Grid(y, x, 4e-7, 11.0, angle_deg=25.0, n_slices=4, seed=3)
    slabs = phantoms.projected_slabs("fibre_bundle", smp, ext, grid)
    fb = phantoms.FibreBundle(shape=(3, 1, 81), voxel_size_m=4e-7, sample_diameter_m=30e-6,
                              seed=3)
    ref = fb.projection_analytic(y, x, 25.0, 11.0)
    assert np.allclose(slabs.sum(axis=0), ref, rtol=1e-9, atol=1e-20)


@pytest.mark.parametrize("angle", [0.0, 20.0])
def test_circuit_slabs_sum_to_the_projection(angle):
    smp = _sample("integrated_circuit", width_um=2.0, depth_um=0.6, height_um=2.0,
                  material="sio2")
    ext = phantoms.Extent("box", 2e-6, 0.6e-6, 2e-6)
    n, dx = 24, 2e-8
    ax = (np.arange(n) - n // 2) * dx
    grid1 = phantoms.Grid(ax, ax, dx, 8.8, angle_deg=angle, n_slices=1)
    grid3 = phantoms.Grid(ax, ax, dx, 8.8, angle_deg=angle, n_slices=3)
    one = phantoms.projected_slabs("integrated_circuit", smp, ext, grid1)[0]
    three = phantoms.projected_slabs("integrated_circuit", smp, ext, grid3)
    rel = np.abs(three.sum(axis=0) - one).max() / np.abs(one).max()
    assert rel < (1e-9 if angle == 0 else 0.1)


# --- local fibre placement ------------------------------------------------------------------

def test_a_fibre_is_the_same_whether_made_for_a_window_or_the_whole_sample():
    """A strip near the axis, generated on its own (a fresh bundle), holds exactly the fibres
    of the whole sample that its rays can meet, bit for bit."""
    kw = dict(shape=(1, 1, 1), voxel_size_m=50e-9, sample_diameter_m=300e-6, seed=11,
              cell_m=30e-6)
    full = phantoms.FibreBundle(**kw)
    whole = full.fibres
    for angle, (lo, hi), h in ((0.0, (-2e-6, 2e-6), 1e-6), (37.0, (40e-6, 48e-6), 20e-6)):
        win = phantoms.FibreBundle(**kw)
        near = win.fibres_near(lo, hi, angle, h)
        assert len(near) < len(whole) / 2            # only a part of the sample was made
        assert len(win._cells) < len(full._cells)
        rows = {tuple(r) for r in whole}
        assert all(tuple(r) in rows for r in near)
        # every fibre of the whole sample that a ray of the window meets is among them
        th = np.deg2rad(angle)
        for y in (-h, 0.0, h):
            cx, cz = whole[:, 0] + y * whole[:, 4], whole[:, 1] + y * whole[:, 5]
            sc = cx * np.cos(th) - cz * np.sin(th)
            seen = whole[(sc + whole[:, 2] >= lo) & (sc - whole[:, 2] <= hi)]
            got = {tuple(r) for r in near}
            assert len(seen) > 0 and all(tuple(r) in got for r in seen)


def test_fibre_statistics_on_a_big_window():
    """Packing fraction, diameters and tilts of the placed fibres against the requested values
    (a 400 µm bundle; the outer ring, where the wall cuts the cells, left out)."""
    fb = phantoms.FibreBundle(shape=(1, 1, 1), voxel_size_m=50e-9, sample_diameter_m=400e-6,
                              seed=5, outer_diameter_m=(6e-6, 1.5e-6),
                              inner_diameter_m=(3e-6, 1e-6), dispersion_deg=10.0,
                              packing_fraction=0.45)
    f = fb.fibres
    r_in = 160e-6
    c = np.hypot(f[:, 0], f[:, 1]) < r_in
    # packing: area-weighted coverage of a raster (independent of the per-cell accounting)
    g = np.arange(-110e-6, 110e-6, 0.5e-6)
    xx, zz = np.meshgrid(g, g, indexing="ij")
    cov = np.zeros(xx.shape, bool)
    for x, z, ro in f[:, :3]:
        if abs(x) < 120e-6 and abs(z) < 120e-6:
            cov |= (xx - x) ** 2 + (zz - z) ** 2 <= ro * ro
    assert cov.mean() == pytest.approx(0.45, abs=0.02)
    assert np.sum(np.pi * f[c, 2] ** 2) / (np.pi * r_in ** 2) == pytest.approx(0.45, abs=0.02)
    assert 2 * f[c, 2].mean() == pytest.approx(6e-6, rel=0.03)
    assert 2 * f[c, 2].std() == pytest.approx(1.5e-6, rel=0.12)
    assert 2 * f[c, 3].mean() == pytest.approx(3e-6, rel=0.05)
    tilt = np.degrees(np.arctan(f[c, 4:6]))
    assert np.abs(tilt.mean(axis=0)).max() < 0.5
    assert tilt.std(axis=0) == pytest.approx([5.0, 5.0], rel=0.08)
    # no two fibres overlap, all inside the sample
    from scipy.spatial import cKDTree

    pairs = cKDTree(f[:, :2]).query_pairs(2 * f[:, 2].max(), output_type="ndarray")
    d = np.hypot(*(f[pairs[:, 0], :2] - f[pairs[:, 1], :2]).T)
    assert np.all(d >= f[pairs[:, 0], 2] + f[pairs[:, 1], 2] - 1e-15)
    assert np.all(np.hypot(f[:, 0], f[:, 1]) + f[:, 2] <= 200e-6 + 1e-12)


def test_fibre_slabs_match_interval_overlaps_for_thin_slabs():
    """Slabs thinner than a fibre (many fibres span 2–3 slabs): the slab sums against a
    direct sum of every fibre's wall-interval overlap with every slab."""
    fb = phantoms.FibreBundle(shape=(1, 1, 1), voxel_size_m=2e-7, sample_diameter_m=40e-6,
                              seed=2)
    y, s = np.array([-1e-6, 0.5e-6]), np.linspace(-8e-6, 8e-6, 41)
    edges = np.linspace(-20e-6, 20e-6, 17)                       # 2.5 µm slabs
    out = fb.projection_slabs(y, s, 20.0, 11.0, edges)
    lut = phantoms.refractive_indices(fb.materials, 11.0)
    th = np.deg2rad(20.0)
    f = fb.fibres
    for i, h in enumerate(y):
        for l in range(16):
            e0, e1 = edges[l], edges[l + 1]
            ref = np.zeros(len(s), complex)
            cb = np.sqrt(np.clip(20e-6 ** 2 - s ** 2, 0, None))
            ref += np.clip(np.minimum(cb, e1) - np.maximum(-cb, e0), 0, None) * lut[1]
            for x, z, ro, ri, tx, tz in f:
                cx, cz = x + h * tx, z + h * tz
                sc, tc = cx * np.cos(th) - cz * np.sin(th), cx * np.sin(th) + cz * np.cos(th)
                for r, sign in ((ro, 1), (ri, -1)):
                    hc = np.sqrt(np.clip(r * r - (s - sc) ** 2, 0, None))
                    ov = np.clip(np.minimum(tc + hc, e1) - np.maximum(tc - hc, e0), 0, None)
                    ref += sign * ov * (lut[2] - lut[1])
            assert np.allclose(out[l, i], ref, rtol=1e-9, atol=1e-22)


def _slabs_by_ndimage(ic, angle, energy, edges):
    """The circuit's tilted slabs the direct way: each row's square rotated by
    scipy.ndimage.rotate, then its rows summed per slab (the reference for the sparse path)."""
    from scipy import ndimage

    ny, nz, nx = ic.shape
    lut = phantoms.refractive_indices(ic.materials, energy)
    n = max(nz, nx)
    z = (np.arange(n) - n // 2 + 0.5 * (1 - n % 2)) * ic.voxel_size_m
    which = np.searchsorted(edges, z, side="right") - 1
    which[(z < edges[0]) | (z >= edges[-1])] = -1
    z0, x0 = (n - nz) // 2, (n - nx) // 2
    out = np.zeros((len(edges) - 1, ny, nx), complex)
    for y in range(ny):
        sq = np.zeros((n, n), complex)
        sq[z0:z0 + nz, x0:x0 + nx] = lut[ic.row(y)]
        r = (ndimage.rotate(sq.real, -angle, reshape=False, order=1)
             + 1j * ndimage.rotate(sq.imag, -angle, reshape=False, order=1))
        for l in range(len(edges) - 1):
            out[l, y] = r[which == l, x0:x0 + nx].sum(axis=0) * ic.voxel_size_m
    return out


@pytest.mark.parametrize("shape", [(40, 60, 90), (3, 90, 50)])
@pytest.mark.parametrize("angle", [20.0, 90.0, 133.7, 250.0])
def test_tilted_circuit_slabs_equal_rotating_each_row(shape, angle):
    """The batched sparse rotate-and-sum (one operator per angle) gives what rotating every
    row with scipy.ndimage.rotate and summing gives, for a plate wider than deep and one deeper
    than wide, rows in several batches."""
    ic = phantoms.IntegratedCircuit(shape=shape, voxel_size_m=14e-9, thickness_m=0.7e-6,
                                    n_layers=5, substrate_thickness_m=0.1e-6, seed=3,
                                    min_pitch_m=40e-9, max_pitch_m=200e-9)
    half = max(shape[1:]) * 14e-9 / 2
    edges = np.array([-half, -0.2e-6, 0.15e-6, half])
    got = ic.projection_slabs(angle, 8.8, edges)
    ref = _slabs_by_ndimage(ic, angle, 8.8, edges)
    assert np.abs(ref).max() > 0
    assert np.abs(got - ref).max() <= 1e-12 * np.abs(ref).max()


@pytest.mark.parametrize("shape", [(40, 12, 90), (3, 90, 50)])
def test_tilted_circuit_projection_equals_the_square_radon_row_by_row(shape):
    """The projection at tilted angles (the volume's truth, single slice) uses the Radon matrix
    restricted to the plate's pixels and batches of rows; it must equal the Radon transform of
    each row's whole zero-padded square, for a plate far wider than deep and one deeper than
    wide, several angles in one call, and rows across batch boundaries."""
    from twin.operators.radon import Radon

    ic = phantoms.IntegratedCircuit(shape=shape, voxel_size_m=14e-9, thickness_m=0.15e-6,
                                    n_layers=3, substrate_thickness_m=0.05e-6, seed=5,
                                    min_pitch_m=40e-9, max_pitch_m=200e-9)
    ic.ROWS_PER_BATCH = 7
    angles = [17.0, 90.0, 140.8]
    got = ic.projection(angles, 8.8)
    ny, nz, nx = shape
    n = max(nz, nx)
    z0, x0 = (n - nz) // 2, (n - nx) // 2
    lut = phantoms.refractive_indices(ic.materials, 8.8)
    radon = Radon(n, angles)
    ref = np.zeros_like(got)
    for y in range(ny):
        sq = np.zeros((n, n), complex)
        sq[z0:z0 + nz, x0:x0 + nx] = lut[ic.row(y)]
        ref[:, y, :] = radon.fwd(sq)[:, x0:x0 + nx] * ic.voxel_size_m
    assert np.abs(ref).max() > 0
    assert np.abs(got - ref).max() <= 1e-12 * np.abs(ref).max()
