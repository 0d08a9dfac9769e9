"""``twin run``: the whole chain for one scenario, each stage cached.

Stages, in the order of the experiment: forecast → sweep (if the scenario has one) →
simulate (the 2D scan, ``[run] frames`` of it) → reconstruct → compare with the ground truth
→ for 3D scenarios the preview ptycho-tomography chain → figures → report. Every stage writes
into its own folder of the output directory with a ``stage.json`` that records a hash of
everything it depends on; a re-run redoes a stage only when that hash changed (or an earlier
stage was redone).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from twin import forecast as _forecast
from twin.scenario import Scenario

FIGURES = "figures"


def _hash(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


class _Stage:
    def __init__(self, out: Path, name: str, key: str):
        self.dir = out / name
        self.name = name
        self.key = key

    def fresh(self) -> bool:
        meta = self.dir / "stage.json"
        if meta.exists():
            try:
                return json.loads(meta.read_text()).get("key") == self.key
            except json.JSONDecodeError:
                return False
        return False

    def done(self, **info) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "stage.json").write_text(json.dumps({"key": self.key, **info}, indent=2,
                                                        default=str))


def _scenario_parts(s: Scenario, *sections: str) -> dict:
    d = s.model_dump()
    return {k: d[k] for k in sections}


def run(s: Scenario, out: str | Path, progress: bool = True, build_report: bool = True,
        log=print) -> dict:
    """Run every stage for scenario ``s`` into ``out``; returns the summary (also
    ``summary.json``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / FIGURES).mkdir(exist_ok=True)
    (out / "scenario.json").write_text(s.model_dump_json(indent=2))
    summary: dict = {"scenario": s.name, "stages": {}}
    redo = False

    def stage(name: str, *deps) -> _Stage:
        nonlocal redo
        st = _Stage(out, name, _hash(name, *deps))
        fresh = st.fresh() and not redo
        st.skip = fresh
        if not fresh:
            redo = True
        summary["stages"][name] = "cached" if fresh else "run"
        return st

    # 1. forecast (always cheap, always fresh)
    fc = _forecast.forecast(s)
    (out / "forecast.json").write_text(json.dumps(fc.as_dict(), indent=2))
    summary["forecast"] = fc.values

    # 2. sweep
    if s.sweep:
        st = stage("sweep", s.model_dump(exclude={"run", "reconstruction"}))
        if not st.skip:
            from twin import sweep as sw

            t0 = time.perf_counter()
            table = sw.run_sweep(s, progress=progress)
            st.dir.mkdir(parents=True, exist_ok=True)
            sw.write_table(table, st.dir / "sweep.csv")
            for p in sw.plot_sweep(table, s, out / FIGURES / "sweep"):
                log(f"  wrote {p}")
            st.done(points=len(table), seconds=time.perf_counter() - t0)
        summary["sweep_points"] = json.loads((st.dir / "stage.json").read_text())["points"]
    redo = False   # the sweep does not feed the acquisition stages

    # 3. simulate (on the run's sub-field, if it names one)
    s2d = s
    if s.run.fov_um is not None:
        s2d = s.with_values({"scan.fov_x_um": min(s.run.fov_um, s.scan.fov_x_um),
                             "scan.fov_y_um": min(s.run.fov_um, s.scan.fov_y_um)})
    sim_deps = _scenario_parts(s, "sample", "beam", "optics", "scan", "detector", "seed")
    st_sim = stage("simulate", sim_deps, s.run.frames, s.run.fov_um)
    cxi = st_sim.dir / "data.cxi"
    if not st_sim.skip:
        from twin import simulate

        t0 = time.perf_counter()
        log(f"simulating {s.name} ...")
        summ = simulate.simulate(s2d, cxi, n_frames=s.run.frames, progress=progress)
        st_sim.done(frames=summ.n_frames, peak_counts=summ.peak_counts,
                    mean_counts_per_frame=summ.mean_counts_per_frame,
                    saturated_frames=summ.saturated_frames,
                    position_error_rms_m=summ.position_error_rms_m,
                    seconds=time.perf_counter() - t0)
    summary["simulate"] = json.loads((st_sim.dir / "stage.json").read_text())

    # 4. reconstruct and compare
    rec_deps = (s.model_dump()["reconstruction"], s.run.iterations, s.run.modes)
    st_rec = stage("reconstruct", rec_deps)
    rec_h5 = st_rec.dir / "reconstruction.h5"
    if not st_rec.skip:
        from twin import io, reconstruct, validate

        t0 = time.perf_counter()
        data = io.read_cxi(cxi)
        r = s.reconstruction
        alg = "rpie" if r.algorithm == "multislice" and r.slices == 1 else r.algorithm
        opts = reconstruct.Options(
            algorithm=alg, iterations=s.run.iterations or r.iterations,
            modes=s.run.modes or r.modes,
            position_correction="gradient" if r.position_correction else "none",
            slices=r.slices, seed=s.seed,
            slice_thickness_m=(s.sample.cross_section_um[1] * 1e-6 / r.slices
                               if r.slices > 1 else 0.0))
        log(f"reconstructing ({opts.algorithm}, {opts.iterations} iterations) ...")
        res = reconstruct.reconstruct(data, opts, progress=progress)
        st_rec.dir.mkdir(parents=True, exist_ok=True)
        io.write_reconstruction(rec_h5, res.object, res.probe, res.positions_m, res.cost,
                                res.pixel_size_m)
        c = validate.compare(res.object, data.ground_truth, res.pixel_size_m,
                             data.extra["true_translation"], res.probe.shape[-1])
        np.savez_compressed(st_rec.dir / "comparison.npz", aligned=c.aligned_phase,
                            truth=c.truth_phase, frc=c.frc.correlation,
                            half_bit=c.frc.half_bit, freq=c.frc.frequency_per_m)
        st_rec.done(**c.as_dict(), final_cost=res.cost[-1], iterations=len(res.cost),
                    frame_iterations_per_s=res.timings["frame_iterations_per_s"],
                    stopped_early=res.stopped_early, seconds=time.perf_counter() - t0)
    summary["reconstruct"] = json.loads((st_rec.dir / "stage.json").read_text())

    # 5. the preview ptycho-tomography chain (3D scenarios)
    if s.is_3d and s.sample.phantom != "siemens_star":
        st_ch = stage("tomography", sim_deps, rec_deps, s.model_dump()["run"],
                      s.model_dump()["tomography"])
        if not st_ch.skip:
            from twin import chain

            t0 = time.perf_counter()
            log(f"preview ptycho-tomography: {s.run.chain_projections} angles, "
                f"{s.run.chain_fov_um} µm field ...")
            cr = chain.run_chain(s, n_angles=s.run.chain_projections, fov_um=s.run.chain_fov_um,
                                 iterations=s.run.chain_iterations, progress=progress)
            st_ch.dir.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(st_ch.dir / "chain.npz", volume=cr.volume,
                                truth=cr.truth_volume, angles=cr.angles_deg,
                                fsc=cr.fsc.correlation, half_bit=cr.fsc.half_bit,
                                freq=cr.fsc.frequency_per_m, projections=cr.projections[:4])
            st_ch.done(pcc_volume=cr.pcc_volume, fsc_resolution_m=cr.fsc_resolution_m,
                       voxel_m=cr.voxel_m, angles=len(cr.angles_deg),
                       projection_pcc_mean=float(cr.projection_pcc.mean()),
                       seconds=time.perf_counter() - t0)
        summary["tomography"] = json.loads((st_ch.dir / "stage.json").read_text())

    # 6. figures (cheap: always redrawn from the stages' files)
    from twin import figures

    summary["figures"] = [str(p.relative_to(out)) for p in figures.draw_all(s, out)]
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))

    # 7. report
    if build_report:
        from twin import report

        summary["report"] = str(report.build(out))
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
