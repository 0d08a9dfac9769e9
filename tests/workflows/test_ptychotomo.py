import numpy as np
import pytest

from twin import scenario

from twin.workflows import ptychotomo as chain

from twin.analysis import metrics


def test_unwrap_phase_recovers_a_steep_ramp():
    yy, xx = np.mgrid[:64, :64]
    true = 0.4 * xx + 0.1 * yy + 0.5 * np.sin(yy / 7.0)
    wrapped = np.angle(np.exp(1j * true))
    un = metrics.unwrap_phase(wrapped)
    assert np.allclose(un - un.mean(), true - true.mean(), atol=1e-6)


def test_background_plane_removed():
    yy, xx = np.mgrid[:32, :40].astype(float)
    img = 0.3 + 0.01 * xx - 0.02 * yy
    img[:, 10:30] += 1.0                      # the sample, away from the border columns
    out = chain.remove_background(img, 4)
    assert np.allclose(out[:, :4], 0, atol=1e-9)
    assert np.allclose(out[:, 15], 1.0, atol=1e-9)


def test_preview_chain_end_to_end(scenario_path):
    s = scenario.load(scenario_path("brain_phantom_eiger_3khz"))
    s = s.with_values({"detector.crop": 64, "reconstruction.modes": 1})
    # 15 iterations: the file hands the reconstruction the probe model, not the true probe
    r = chain.run_chain(s, n_angles=6, fov_um=3.0, iterations=15, n_workers=1)
    n_rows, n = r.volume.shape[0], r.volume.shape[-1]
    assert r.volume.shape == (n_rows, n, n) and r.projections.shape[0] == 6
    assert np.all(np.isfinite(r.volume))
    assert r.pcc_volume > 0.5
    assert r.fsc_resolution_m > 0
    assert np.all(r.projection_pcc > 0.8)


def test_chain_refuses_a_2d_phantom(scenario_path):
    from twin.core.errors import TwinInputError

    s = scenario.load(scenario_path("quickstart"))
    with pytest.raises(TwinInputError, match="siemens_star"):
        chain.run_chain(s, n_angles=4)
