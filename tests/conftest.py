from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"


@pytest.fixture
def scenario_path():
    def get(name: str) -> Path:
        return SCENARIOS / f"{name}.toml"
    return get


@pytest.fixture(scope="session")
def quick_cxi(tmp_path_factory):
    """The quickstart scenario simulated once (400 frames of 64 × 64) for the session."""
    from twin import scenario
    from twin.workflows import simulate

    s = scenario.load(SCENARIOS / "quickstart.toml")
    out = tmp_path_factory.mktemp("quick") / "quick.cxi"
    simulate.simulate(s, out)
    return out


def _cupy_or_skip():
    from twin.core.xp import gpu_available

    if not gpu_available():
        pytest.skip("CuPy with a GPU is not available")
    import cupy

    return cupy


@pytest.fixture(params=["numpy", "cupy"])
def xp(request):
    """The array module an operator or engine test runs on: NumPy always, CuPy where a GPU is."""
    if request.param == "cupy":
        return _cupy_or_skip()
    import numpy

    return numpy
