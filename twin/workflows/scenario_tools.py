"""Guided scenarios: annotated templates, checks with the derived geometry, the schema's docs.

Everything here is generated from the pydantic models of :mod:`twin.scenario` — their field
types, bounds, defaults and attribute docstrings — so the template, the check and the book's
schema page never drift from the schema itself.

* :func:`annotated_toml` writes a scenario as TOML with every field commented: its meaning, unit,
  allowed range and where its default comes from (``twin scenario new``);
* :func:`check_report` validates a file and lists the derived geometry and rates
  (``twin scenario check``);
* :func:`schema_markdown` is the book's schema page (``twin scenario schema --markdown``).
"""

from __future__ import annotations

import enum
import json
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path

import annotated_types as at
from pydantic import BaseModel

from twin.core.formatting import format_value
from twin.geometry import Geometry
from twin.scenario import Scenario, loads

# Units named by the tokens of a scenario field's name (``outer_diameter_um_mean`` → µm).
_NAME_UNITS = (
    ("g_per_cm3", "g/cm³"), ("photons_per_s", "photons/s"), ("um2_per_s", "µm²/s"),
    ("nm_per_s", "nm/s"), ("per_pixel_hz", "counts/s"), ("kev", "keV"), ("hz", "Hz"),
    ("deg", "degrees"), ("nm", "nm"), ("um", "µm"), ("mm", "mm"), ("m", "m"), ("s", "s"),
)

#: Where defaults that the schema leaves unset (None) come from, by field.
_DERIVED_DEFAULTS = {
    "detector": "the detector preset (twin/acquisition/detectors.toml)",
}

STARTER = {
    "name": "my_scenario",
    "description": "A 2D scan of a Siemens star: edit the values, then `twin scenario check`",
    "sample": {"phantom": "siemens_star", "shape": "box", "width_um": 6.0, "depth_um": 1.5,
               "height_um": 6.0, "material": "si3n4"},
    "beam": {"energy_kev": 8.0, "flux_photons_per_s": 1e9},
    "optics": {"zone_plate_diameter_um": 150.0, "outermost_zone_nm": 100.0,
               "central_stop_diameter_um": 40.0, "beam_diameter_um": 1.0},
    "scan": {"fov_x_um": 6.0, "fov_y_um": 6.0, "fast_step_um": 0.3, "slow_step_um": 0.3,
             "frame_rate_hz": 1000.0},
    "detector": {"preset": "eiger_500k", "distance_m": 2.0, "crop": 64},
}
"""The values ``twin scenario new`` starts from without ``--from``: the quickstart's physics."""


def field_unit(name: str) -> str:
    """Unit a scenario field's name carries (``"fov_x_um"`` → ``"µm"``), or ``""``.

    Parameters
    ----------
    name : str
        The field's own name (the last part of its dotted path); the first unit token of
        ``_NAME_UNITS`` found between underscores (or at either end) names the unit.
    """
    for token, unit in _NAME_UNITS:
        if re.search(rf"(^|_){token}(_|$)", name):
            return unit
    return ""


@dataclass(frozen=True)
class FieldDoc:
    """One scenario field as the template and the book describe it.

    Attributes
    ----------
    path : str
        Dotted path (``"scan.fov_x_um"``).
    kind : str
        Type in words (``"number"``, ``"integer"``, ``"one of 'fly', 'step'"``).
    unit, allowed, default, description : str
    required : bool
    """

    path: str
    kind: str
    unit: str
    allowed: str
    default: str
    description: str
    required: bool


def _flatten(tp) -> list:
    """The member types of a (possibly Optional, Annotated) annotation, with their metadata."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        base, *meta = typing.get_args(tp)
        return [(b, m + meta) for b, m in _flatten(base)]
    if origin in (typing.Union, types.UnionType):
        return [x for a in typing.get_args(tp) for x in _flatten(a)]
    return [(tp, [])]


def _bounds(meta: list) -> list[str]:
    out = []
    for m in meta:
        for item in ([m] if not hasattr(m, "metadata") else list(m.metadata)):
            for cls, op in ((at.Gt, ">"), (at.Ge, "≥"), (at.Lt, "<"), (at.Le, "≤")):
                if isinstance(item, cls):
                    out.append(f"{op} {getattr(item, cls.__name__.lower())}")
            if isinstance(item, at.MinLen):
                out.append(f"at least {item.min_length} value(s)")
    return out


def _describe_type(field) -> tuple[str, str]:
    """(kind, allowed) of a pydantic field."""
    kinds, allowed = [], []
    meta = list(field.metadata)
    for tp, m in _flatten(field.annotation):
        b = _bounds(m + meta)
        if tp is type(None):
            kinds.append("unset")
        elif typing.get_origin(tp) is typing.Literal:
            kinds.append("choice")
            allowed.append("one of " + ", ".join(repr(c) for c in typing.get_args(tp)))
        elif isinstance(tp, type) and issubclass(tp, enum.Enum):
            kinds.append("choice")
            allowed.append("one of " + ", ".join(repr(c.value) for c in tp))
        elif tp is bool:
            kinds.append("true or false")
        elif tp is int:
            kinds.append("integer")
            allowed += b
        elif tp is float:
            kinds.append("number")
            allowed += b
        elif tp is str:
            kinds.append("text")
        elif typing.get_origin(tp) in (tuple, list, dict):
            kinds.append(f"{typing.get_origin(tp).__name__} of values")
            allowed += b
        else:
            kinds.append(getattr(tp, "__name__", str(tp)))
    if "_known_medium" in repr(field.annotation):
        allowed.append("a formula (C6H10O2), an xraylib NIST name, a named material or "
                       "\"vacuum\"")
    elif field.annotation is not None and "MaterialName" in repr(field.annotation) or any(
            "_known_material" in repr(m) for m in meta):
        allowed.append("a formula (C6H10O2), an xraylib NIST name or a named material")
    seen = []
    for k in kinds:
        if k not in seen:
            seen.append(k)
    kind = " or ".join(x for x in seen if x != "unset") + (" (may be unset)" if "unset" in seen
                                                             else "")
    return kind, ", ".join(dict.fromkeys(allowed)) or "any"


def _class_source(model) -> str:
    """The paper section a model's docstring cites (``"seed 000 §2.1"``), or ``""``."""
    m = re.search(r"seed \d{3}(?: §[\d.]+)?", model.__doc__ or "")
    return m.group(0) if m else ""


def _default(section: str, name: str, field, model) -> tuple[str, bool]:
    if field.is_required():
        return "required (no default)", True
    value = field.default if field.default_factory is None else field.default_factory()
    if isinstance(value, BaseModel):
        return "its table's defaults", False
    if isinstance(value, dict) and not value:
        return "empty (no sweep)", False
    if value is None:
        desc = " ".join((field.description or "").split())
        m = re.search(r"[Dd]efault:?\s*([^.;)]+)", desc)
        if section in _DERIVED_DEFAULTS and name not in ("crop", "mode"):
            return f"unset: from {_DERIVED_DEFAULTS[section]}", False
        if m:
            return f"unset: {m.group(1).strip()}", False
        return "unset", False
    src = _class_source(model)
    where = f"twin's schema ({src})" if src else "twin's schema"
    return f"{_toml_value(value)} from {where}", False


def _submodel(field):
    for tp, _ in _flatten(field.annotation):
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return tp
    return None


def field_docs(model=Scenario, prefix: str = "") -> list[FieldDoc]:
    """Every leaf field of ``model`` (default: the whole scenario), in schema order.

    Parameters
    ----------
    model : type of pydantic.BaseModel
        The scenario or one of its tables; nested tables are walked into.
    prefix : str
        Dotted path of ``model``'s table, with its trailing dot (``"scan."``; ``""`` at the
        top).

    Returns
    -------
    list of FieldDoc
    """
    out = []
    for name, field in model.model_fields.items():
        sub = _submodel(field)
        path = f"{prefix}{name}"
        if sub is not None:
            out += field_docs(sub, f"{path}.")
            continue
        kind, allowed = _describe_type(field)
        section = prefix.split(".")[0]
        default, required = _default(section, name, field, model)
        unit = field_unit(name) if name != "sweep" else ""
        out.append(FieldDoc(path, kind, unit, allowed, default,
                            " ".join((field.description or "").split()), required))
    return out


# --- TOML ---------------------------------------------------------------------------------------


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def _comment(doc: FieldDoc) -> list[str]:
    import textwrap

    lines = textwrap.wrap(doc.description, 96) if doc.description else []
    facts = [f"unit: {doc.unit}" if doc.unit else "unit: none", f"type: {doc.kind}"]
    if doc.allowed != "any":
        facts.append(f"allowed: {doc.allowed}")
    facts.append(f"default: {doc.default}")
    return [f"# {x}" for x in lines + ["; ".join(facts)]]


def _section_models() -> list[tuple[str, type[BaseModel]]]:
    out = []

    def walk(model, prefix):
        """Append (dotted path, model) of every table below ``model``, depth first.

        Parameters
        ----------
        model : type of pydantic.BaseModel
            A scenario table's model.
        prefix : str
            Its dotted path with a trailing dot (``""`` for the scenario).
        """
        for name, field in model.model_fields.items():
            sub = _submodel(field)
            if sub is not None:
                out.append((f"{prefix}{name}", sub))
                walk(sub, f"{prefix}{name}.")

    walk(Scenario, "")
    return out


def annotated_toml(s: Scenario) -> str:
    """Scenario ``s`` as TOML, every field with a comment: meaning, unit, range, default source.

    Unset optional fields are written commented out, so that the file loads back to ``s``.

    Parameters
    ----------
    s : Scenario
        The scenario written.

    Returns
    -------
    str
        The TOML text, ending with a newline.
    """
    data = s.model_dump(mode="python")
    docs = {d.path: d for d in field_docs()}
    out = ["# A twin scenario. Every field has a comment: what it is, its unit, what is allowed",
           "# and where its default comes from. Check it with `twin scenario check FILE`;",
           "# the full schema is in the book's *Scenario schema* page.", ""]
    # a phantom's own medium that sample.medium overrides stays a comment: set, the two would
    # contradict each other (twin.scenario.sample)
    overridden = ({f"sample.{table}.{name}" for table, name in
                   s.sample.OWN_MEDIUM_FIELDS.values()} if s.sample.medium is not None else set())

    for name in Scenario.model_fields:
        if _submodel(Scenario.model_fields[name]) is None and name != "sweep":
            _emit(out, docs, overridden, name, data[name])
    for section, model in _section_models():
        node = data
        for part in section.split("."):
            node = node[part]
        doc = " ".join((model.__doc__ or "").split())
        out.append(f"[{section}]")
        if doc:
            import textwrap

            out.extend(f"# {x}" for x in textwrap.wrap(doc, 96))
        out.append("")
        for name, field in model.model_fields.items():
            if _submodel(field) is None:
                # fields at their default may leave the dump (twin.scenario._base._drop_defaults)
                _emit(out, docs, overridden, f"{section}.{name}", node.get(name, field.default))
    out.append("[sweep]")
    out.extend(_comment(docs["sweep"]))
    if data["sweep"]:
        for k, v in data["sweep"].items():
            out.append(f"{json.dumps(k)} = {_toml_value(v)}")
    else:
        out.append('# "beam.flux_photons_per_s" = [1e8, 1e9, 1e10]')
    return "\n".join(out) + "\n"


def _emit(out: list[str], docs: dict, overridden: set, path: str, value) -> None:
    """Append field ``path``'s comment and its ``key = value`` line to ``out``: commented out
    where the value is None (unset) or the field is in ``overridden``."""
    doc = docs[path]
    out.extend(_comment(doc))
    key = path.rsplit(".", 1)[-1]
    if value is None:
        out.append(f"# {key} =")
    elif path in overridden:
        out.append(f"# {key} = {_toml_value(value)}  (overridden by sample.medium)")
    else:
        out.append(f"{key} = {_toml_value(value)}")
    out.append("")


def new_scenario(name: str, base: Scenario | None = None) -> Scenario:
    """The scenario ``twin scenario new NAME [--from EXISTING]`` writes: ``base`` (or
    :data:`STARTER`) renamed ``name``.

    Parameters
    ----------
    name : str
        The new scenario's ``name``.
    base : Scenario or None
        The scenario copied (``--from``); None: :data:`STARTER`, validated.

    Returns
    -------
    Scenario
        A copy of ``base`` with only ``name`` replaced (not validated again), or the starter.
    """
    if base is None:
        return Scenario.model_validate({**STARTER, "name": name})
    return base.model_copy(update={"name": name})


def write_new(path: str | Path, name: str, base: Scenario | None = None) -> Path:
    """Write the annotated scenario ``name`` (from ``base``) to ``path`` (atomically).

    The text is checked to load back to the same scenario before it is written
    (RuntimeError where it does not).

    Parameters
    ----------
    path : str or pathlib.Path
        The TOML file (replaced whole).
    name : str
        The scenario's ``name``.
    base : Scenario or None
        As :func:`new_scenario`'s.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    from twin.io.atomic import atomic_path

    s = new_scenario(name, base)
    text = annotated_toml(s)
    if loads(text, source=str(path)).model_dump() != s.model_dump():  # pragma: no cover
        raise RuntimeError("the annotated template does not load back to the scenario")
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


# --- check --------------------------------------------------------------------------------------


def check_report(s: Scenario) -> list[tuple[str, str]]:
    """(label, value) rows of the derived geometry and rates of a valid scenario.

    Object pixel, beam size and defocus, overlaps, frames and lines, exposure and photons per
    frame, count rates against the detector's limits, and the headline forecast.

    Parameters
    ----------
    s : Scenario
        A validated scenario.

    Returns
    -------
    list of (str, str)
        Labels and values formatted with their units (:func:`twin.core.formatting.format_value`).
    """
    from twin.workflows.forecast import forecast

    g = Geometry.from_scenario(s)
    fc = forecast(s).values
    fmt = format_value
    peak, limit = "peak_count_rate_per_pixel_hz", "detector_max_count_rate_per_pixel_hz"
    rows = [
        ("detector", f"{g.detector.preset} {g.detector.mode}: {g.n_stored}×{g.n_stored} stored "
                     f"pixels of {fmt('x_m', g.pixel_stored_m)} (binning {g.binning})"),
        ("wavelength", fmt("x_m", g.wavelength_m)),
        ("object pixel λz/(N·p)", fmt("x_m", g.object_pixel_m)),
        ("field of view of one frame", fmt("x_m", g.object_pixel_m * g.n_stored)),
        ("zone-plate focal length", fmt("x_m", g.focal_length_m)),
        ("beam diameter at the sample", fmt("x_m", g.beam_diameter_m)),
        ("defocus", fmt("x_m", g.defocus_m)),
        ("overlap fast / slow", f"{fmt('overlap_fast', fc['overlap_fast'])} / "
                                f"{fmt('overlap_slow', fc['overlap_slow'])}"),
        ("frames", f"{g.frames_per_line:,} per line × {g.lines_per_beam:,} lines = "
                   f"{g.frames_per_projection:,} per projection ({g.n_beams} beam(s))"),
        ("exposure / frame period", f"{fmt('x_s', g.exposure_s)} / "
                                    f"{fmt('x_s', g.frame_period_s)}"),
        ("photons per frame and beam", fmt("photons_total", g.photons_per_frame)),
        ("peak count rate per pixel", f"{fmt(peak, fc[peak])} (limit {fmt(limit, fc[limit])})"),
        ("peak counts per pixel and frame", f"{fc['peak_counts_per_frame']:.3g} (counter "
                                            f"maximum {fc['detector_max_counts']:.0f})"),
        ("saturated", fmt("saturated", fc["saturated"])),
        ("projections", f"{fc['n_projections']:,}"),
        ("total acquisition time", fmt("total_time_s", fc["total_time_s"])),
        ("dose", fmt("dose_gy", fc["dose_gy"])),
        ("data volume", fmt("data_volume_bytes", fc["data_volume_bytes"])),
        ("forecast resolution", f"{fmt('x_m', fc['resolution_forecast_m'])} (limited by "
                                f"{fc['resolution_limited_by']})"),
    ]
    return rows


# --- the book's schema page ---------------------------------------------------------------------


def schema_markdown() -> str:
    """The book's *Scenario schema* page, generated from the models (one table per section)."""
    docs = field_docs()
    out = ["# Scenario schema", "",
           "Generated from `twin/scenario/` by `twin scenario schema --markdown` — do not edit "
           "by hand. Every field, its unit (from its name), what is allowed, its default and "
           "where the default comes from. `twin scenario new NAME` writes a scenario with all "
           "of this as comments; `twin scenario check FILE` validates one and prints the "
           "geometry it implies.", ""]

    def esc(x: str) -> str:
        """``x`` with its ``|`` escaped for a Markdown table cell.

        Parameters
        ----------
        x : str
            A cell's text.
        """
        return x.replace("|", "\\|")

    sections = [("(top level)", Scenario)] + _section_models()
    for section, model in sections:
        prefix = "" if section == "(top level)" else section + "."
        rows = [d for d in docs if d.path.startswith(prefix)
                and "." not in d.path[len(prefix):]]
        if not rows:
            continue
        out.append(f"## `[{section}]`" if prefix else "## Top level")
        out.append("")
        doc = " ".join((model.__doc__ or "").split())
        if prefix and doc:
            out += [doc, ""]
        out += ["| field | type | unit | allowed | default | meaning |",
                "|---|---|---|---|---|---|"]
        for d in rows:
            out.append(f"| `{d.path[len(prefix):]}` | {esc(d.kind)} | {d.unit or '—'} | "
                       f"{esc(d.allowed)} | {esc(d.default)} | {esc(d.description) or '—'} |")
        out.append("")
    return "\n".join(out)
