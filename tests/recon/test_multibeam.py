"""Multibeam ptychography: several coded beams share every frame (Lyubomirskiy et al. 2022).

The reconstruction is checked against the simulation's ground truth, which it never sees: with
every beam at its offset it recovers each beam's band; taking the same frames as one beam's (as
twin did before, and as a single-beam code would) it does not."""

import dataclasses

import h5py
import numpy as np
import pytest

from twin import scenario
from twin.analysis import truth
from twin.core.errors import TwinInputError
from twin import io
import twin.recon as recon
from twin.workflows import simulate

BEAMS = 3


@pytest.fixture(scope="module")
def mb_cxi(tmp_path_factory):
    """The quickstart star scanned by 3 coded beams, each with the single beam's photons."""
    s = scenario.load("scenarios/quickstart.toml").with_values(
        {"scan.n_beams": BEAMS, "beam.flux_photons_per_s": 3e9})
    out = tmp_path_factory.mktemp("mb") / "mb.cxi"
    simulate.simulate(s, out)
    return out


def _pcc(r, d, beam=None):
    offs = d.beam_offsets_m if beam is None else d.beam_offsets_m[beam:beam + 1]
    lit = truth.lit_positions(d.truth.translations_m, offs)
    return truth.compare(r.object, d.truth.object, r.pixel_size_m, lit,
                         r.probe.shape[-1]).pcc_phase


def test_file_carries_the_beams(mb_cxi):
    d = io.read_cxi(mb_cxi)
    assert d.n_beams == BEAMS and d.beam_offsets_m.shape == (BEAMS, 2)
    assert d.beam_illumination.shape == (BEAMS, 1) + d.illumination.shape[-2:]
    # each beam's model (the zone plate through its own code, resampled to the reconstruction
    # grid) is nearest to the probe that beam really had, not to the other beams'
    true = d.truth.probe_modes[:, 0]
    model = d.beam_illumination[:, 0]

    def overlap(a, b):
        return abs(np.vdot(a, b)) / (np.linalg.norm(a) * np.linalg.norm(b))

    for b in range(BEAMS):
        own = overlap(model[b], true[b])
        assert own > 0.8
        assert all(own > overlap(model[b], true[c]) + 0.3 for c in range(BEAMS) if c != b)


@pytest.fixture
def backend(xp):
    """The engines' backend option for the ``xp`` fixture's module (numpy; cupy on a GPU)."""
    return xp.__name__


@pytest.mark.parametrize("algorithm", ["rpie", "lsqml"])
def test_every_beam_at_its_offset_recovers_the_object(mb_cxi, algorithm, backend):
    d = io.read_cxi(mb_cxi)
    opts = recon.Options(algorithm=algorithm, iterations=30, modes=1,
                           position_correction="gradient", backend=backend)
    r = recon.reconstruct(d, opts)
    assert r.beam_probes.shape == (BEAMS, 1) + r.probe.shape[-2:]
    per_beam = [_pcc(r, d, b) for b in range(BEAMS)]
    assert min(per_beam) > 0.8, per_beam
    # the same frames taken as one beam's: nothing like the object
    one = recon.reconstruct(dataclasses.replace(d, beam_offsets_m=None,
                                                  beam_illumination=None), opts)
    assert _pcc(one, d) < 0.5 < _pcc(r, d) - 0.2


def test_auto_options_with_beams(mb_cxi):
    d = io.read_cxi(mb_cxi)
    r = recon.reconstruct(d, recon.Options(iterations=10, **recon.AUTO))
    assert r.beam_probes is not None and r.chosen
    assert min(_pcc(r, d, b) for b in range(BEAMS)) > 0.8


def test_beams_refuse_what_they_do_not_support(mb_cxi):
    d = io.read_cxi(mb_cxi, frames=40)
    with pytest.raises(TwinInputError, match="--algorithm"):
        recon.reconstruct(d, recon.Options(algorithm="multislice", slices=2,
                                               slice_thickness_m=1e-6, iterations=1))
    with pytest.raises(TwinInputError, match="--position-correction"):
        recon.reconstruct(d, recon.Options(position_correction="annealing", iterations=1))


def test_malformed_beam_datasets(mb_cxi, tmp_path):
    bad = tmp_path / "bad.cxi"
    bad.write_bytes(mb_cxi.read_bytes())
    with h5py.File(bad, "r+") as f:
        del f["entry_1/instrument_1/source_1/beam_offsets"]
        f["entry_1/instrument_1/source_1/beam_offsets"] = np.zeros((BEAMS, 3))
    with pytest.raises(TwinInputError, match="beam_offsets"):
        io.read_cxi(bad)
    with h5py.File(bad, "r+") as f:
        del f["entry_1/instrument_1/source_1/beam_offsets"]
        f["entry_1/instrument_1/source_1/beam_offsets"] = np.zeros((BEAMS + 1, 2))
    with pytest.raises(TwinInputError, match="beam_illumination"):
        io.read_cxi(bad)


@pytest.mark.parametrize("algorithm,steps", [("rpie", "median"), ("lsqml", "median"),
                                             ("lsqml", "per_position")])
def test_beams_on_their_own_rectangles_equal_the_whole_object_update(mb_cxi, algorithm, steps):
    # beams 8× further apart than simulated (the update's algebra does not need consistent
    # data), so that a batch's beams light disjoint rectangles of the object
    d = io.read_cxi(mb_cxi)
    d = dataclasses.replace(d, beam_offsets_m=8 * d.beam_offsets_m)
    opts = recon.Options(algorithm=algorithm, lsqml_steps=steps, modes=2,
                           position_correction="gradient", position_correction_start=0,
                           backend="numpy")                   # the algebra, on NumPy
    states = [recon.State(d, opts) for _ in range(2)]
    whole = states[1]
    whole.beam_groups = lambda idx: [((slice(None), slice(None)),
                                      list(enumerate(whole.beam_ops)), idx)]
    idx = np.arange(20, 44)                                   # about one scan line
    assert len(states[0].beam_groups(idx)) == BEAMS           # the per-beam path is exercised
    for st in states:                         # a first batch gives the object some structure
        recon.minibatch_step(st, np.arange(0, 20), opts, it=1)
    costs = [recon.minibatch_step(st, idx, opts, it=1) for st in states]
    assert costs[0] == pytest.approx(costs[1], rel=1e-5)
    np.testing.assert_allclose(states[0].slices[0], whole.slices[0], atol=1e-5)
    np.testing.assert_allclose(states[0].probes, whole.probes, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(states[0].pos, whole.pos, atol=1e-6)
    assert not np.allclose(states[0].pos, states[0].pos0)     # the positions did move


@pytest.mark.parametrize("algorithm,steps", [("rpie", "median"), ("epie", "median"),
                                             ("lsqml", "median"), ("lsqml", "per_position")])
def test_beams_at_one_place_are_probe_modes(mb_cxi, algorithm, steps):
    # B beams with no offsets light the same windows: the frame is Σ_b |F(P_b·O)|², which is
    # one beam with the B probes as its modes. The step with B beams of one mode must be the
    # step with one beam of B modes (modulus constraint, object, probes, and the position
    # step's sign): the beams' bookkeeping against the modes'.
    d = io.read_cxi(mb_cxi, frames=120)
    p0 = d.beam_illumination[:2, 0]
    p0 = p0 / np.linalg.norm(p0, axis=(1, 2))[:, None, None]      # equal powers
    beams = dataclasses.replace(d, beam_offsets_m=np.zeros((2, 2)),
                                beam_illumination=p0[:, None])
    modes = dataclasses.replace(d, beam_offsets_m=None, beam_illumination=None,
                                illumination=p0)
    kw = dict(algorithm=algorithm, lsqml_steps=steps, position_correction="gradient",
              position_correction_start=0, backend="numpy")         # the algebra, on NumPy
    sb = recon.State(beams, recon.Options(modes=1, **kw))
    sm = recon.State(modes, recon.Options(modes=2, **kw))
    np.testing.assert_allclose(sb.probes[:, 0], sm.probe, rtol=1e-5, atol=1e-6)
    opts = recon.Options(modes=1, **kw)
    for it, idx in enumerate((np.arange(0, 40), np.arange(30, 70))):
        cb = recon.minibatch_step(sb, idx, opts, it=1)
        cm = recon.minibatch_step(sm, idx, recon.Options(modes=2, **kw), it=1)
        assert cb == pytest.approx(cm, rel=1e-5)
    # the beams' object is sized per axis, the single beam's square: compare about the
    # origin, the centre pixel of both
    h, w = sb.shape
    r0, c0 = sm.shape[0] // 2 - h // 2, sm.shape[1] // 2 - w // 2
    np.testing.assert_allclose(sb.slices[0], sm.slices[0][r0:r0 + h, c0:c0 + w], rtol=1e-4,
                               atol=1e-4)
    np.testing.assert_allclose(sb.probes[:, 0], sm.probe, rtol=1e-3, atol=1e-3 * abs(
        sm.probe).max())
    np.testing.assert_allclose(sb.pos, sm.pos - (r0, c0), atol=1e-5)
    assert np.abs(sb.pos - sb.pos0).max() > 1e-3                  # the positions moved


def test_offsets_without_beam_models_warn(mb_cxi):
    d = io.read_cxi(mb_cxi, frames=40)
    with pytest.warns(UserWarning, match="beam_illumination"):
        recon.reconstruct(dataclasses.replace(d, beam_illumination=None),
                            recon.Options(iterations=1))


def test_one_offset_moves_the_translations(mb_cxi, tmp_path):
    one = tmp_path / "one.cxi"
    one.write_bytes(mb_cxi.read_bytes())
    src = "entry_1/instrument_1/source_1/"
    with h5py.File(one, "r+") as f:
        beams = f[src + "beam_illumination"][()]
        for k in ("beam_offsets", "beam_illumination"):
            del f[src + k]
        f[src + "beam_offsets"] = np.array([[1e-6, -2e-6]])
        f[src + "beam_illumination"] = beams[2:3]
    d, ref = io.read_cxi(one), io.read_cxi(mb_cxi)
    assert d.n_beams == 1 and d.beam_offsets_m is None
    np.testing.assert_allclose(d.translations_m[:, :2], ref.translations_m[:, :2] + [1e-6, -2e-6])
    np.testing.assert_array_equal(d.illumination, beams[2])
    with h5py.File(one, "r+") as f:
        del f[src + "beam_offsets"]
        f[src + "beam_offsets"] = np.zeros((0, 2))
    with pytest.raises(TwinInputError, match="beam_offsets"):
        io.read_cxi(one)


def test_ptychodus_reads_multibeam_files(mb_cxi, tmp_path):
    # the field's reader takes the multibeam file and its reconstruction unchanged
    cxi_file = pytest.importorskip("ptychodus.plugins.cxi_file")
    ds = cxi_file.CXIDiffractionFileReader().read(mb_cxi)
    d = io.read_cxi(mb_cxi)
    assert np.array_equal(np.concatenate([a.get_patterns() for a in ds]), d.frames)
    r = recon.reconstruct(d, recon.Options(iterations=2, modes=1))
    out = tmp_path / "rec.cxi"
    io.write_cxi_product(out, r.object, r.probe, r.positions_m, r.pixel_size_m,
                         energy_kev=d.energy_kev, beam_probes=r.beam_probes)
    product = cxi_file.CXIProductFileIO().read(out)
    assert np.array_equal(product.probes.get_array()[0], r.probe)
    with h5py.File(out) as f:
        assert np.array_equal(f["entry_1/twin/beam_probes"][()], r.beam_probes)
