from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"


@pytest.fixture
def scenario_path():
    def get(name: str) -> Path:
        return SCENARIOS / f"{name}.toml"
    return get
