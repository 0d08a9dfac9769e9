"""Data files shipped with twin, read with :mod:`importlib.resources` (no Python API).

``materials.toml`` (the named materials of :mod:`twin.sample.materials`), ``costs.json``
(per-frame costs measured by ``tools/measure_costs.py``), ``paper_figures.toml`` (published
numbers the reports compare with), ``scenarios/`` (the scenarios that ship with twin, found by
name wherever it is installed) and ``simulated/`` (the shipped simulated resolution points).
"""

__all__: list[str] = []
