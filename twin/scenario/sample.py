"""The ``[sample]`` table: outer shape, bulk material and the phantom inside
(``[sample.fibres]``, ``[sample.circuit]``, ``[sample.star]``)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_serializer, model_validator

from twin.core.errors import TwinInputError
from twin.sample import materials as _materials
from twin.scenario._base import (MaterialName, MediumName, NonNegFloat, PosFloat, _drop_defaults,
                                 _same_medium, _Strict)

__all__ = ["FibreBundle", "IntegratedCircuit", "SiemensStar", "Sample"]


class FibreBundle(_Strict):
    """Axon-mimicking bundle of coaxially electrospun hollow PCL microfibres (seed 000 §2.1)."""

    fibre_material: MaterialName = "polycaprolactone"
    """Material of the hollow fibres' walls."""
    matrix_material: MaterialName = "water"
    """Material filling the space between and inside the fibres."""
    outer_diameter_um_mean: PosFloat = 6.0
    """Mean outer diameter of a fibre."""
    outer_diameter_um_sd: NonNegFloat = 1.5
    """Standard deviation of the outer diameter."""
    inner_diameter_um_mean: PosFloat = 3.0
    """Mean inner (lumen) diameter of a fibre."""
    inner_diameter_um_sd: NonNegFloat = 1.0
    """Standard deviation of the inner diameter."""
    orientation_dispersion_deg: Annotated[float, Field(ge=0, le=90)] = 10.0
    """Spread of the fibres' directions about the bundle axis."""
    packing_fraction: Annotated[float, Field(gt=0, lt=0.9)] = 0.5
    """Fraction of the cross-section the fibres fill."""

    @model_validator(mode="after")
    def _inner_inside_outer(self):
        if self.inner_diameter_um_mean >= self.outer_diameter_um_mean:
            raise ValueError(f"inner_diameter_um_mean ({self.inner_diameter_um_mean}) must be "
                             f"smaller than outer_diameter_um_mean "
                             f"({self.outer_diameter_um_mean})")
        return self


class IntegratedCircuit(_Strict):
    """Layered integrated circuit (seed 002 §2: 13 layers, 3.92 µm thick)."""

    n_layers: Annotated[int, Field(ge=1, le=100)] = 13
    """Metal and via layers stacked along the beam."""
    wire_material: MaterialName = "cu"
    """Material of the wires."""
    via_material: MaterialName = "w"
    """Material of the vias between layers."""
    dielectric_material: MaterialName = "sio2"
    """Insulator between the wires."""
    substrate_material: MaterialName = "si"
    """Material of the substrate under the layers."""
    substrate_thickness_um: NonNegFloat = 0.5
    """Thickness of the substrate kept under the layers."""
    min_pitch_nm: PosFloat = 64.0
    """Finest wire pitch (the lowest layers)."""
    max_pitch_nm: PosFloat = 1000.0
    """Coarsest wire pitch (the top layers)."""

    @model_validator(mode="after")
    def _pitches(self):
        if self.min_pitch_nm > self.max_pitch_nm:
            raise ValueError("min_pitch_nm must not exceed max_pitch_nm")
        return self


class SiemensStar(_Strict):
    """Siemens star of heavy-metal spokes on a membrane, a 2D resolution target."""

    spokes: Annotated[int, Field(ge=4, le=720)] = 36
    """Number of spokes (each a dark and a light sector)."""
    spoke_material: MaterialName = "ta"
    """Material of the spokes."""
    spoke_thickness_um: PosFloat = 0.5
    """Thickness of the spokes along the beam."""
    membrane_material: MaterialName = "si3n4"
    """Material of the supporting membrane."""
    membrane_thickness_um: NonNegFloat = 1.0
    """Thickness of the membrane."""
    sidewall_angle_deg: Annotated[float, Field(ge=45, le=90)] = 90.0
    """Angle of the spokes' sidewalls to the membrane (90 = vertical, ideal): the projected
    thickness ramps from 0 to the full thickness over ``spoke_thickness·cot(angle)`` across
    every edge, centred on the nominal edge."""
    edge_roughness_nm: NonNegFloat = 0.0
    """Rms line-edge roughness of the spokes: a random displacement of each edge along its
    normal (0 = ideal edges)."""
    edge_correlation_nm: PosFloat = 30.0
    """Correlation length of the edge displacement along the edge (Gaussian correlation)."""

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        return _drop_defaults(handler(self), self, _STAR_REALISM)


_STAR_REALISM = ("sidewall_angle_deg", "edge_roughness_nm", "edge_correlation_nm")


class Sample(_Strict):
    """The sample: its outer shape and bulk material (for dose) and the phantom inside it.

    The rotation axis is vertical (along y, the slow scan axis); ``width_um`` runs along x,
    ``depth_um`` along the beam at 0°.
    """

    phantom: Literal["fibre_bundle", "integrated_circuit", "siemens_star", "uniform"] = "uniform"
    """The structure inside the sample; its table ([sample.fibres], [sample.circuit],
    [sample.star]) sets it up."""
    shape: Literal["cylinder", "box"] = "cylinder"
    """Outer shape: a vertical cylinder or a box."""
    diameter_um: PosFloat | None = None
    """Cylinder diameter (shape = 'cylinder')."""
    width_um: PosFloat | None = None
    """Box extent along x (shape = 'box')."""
    depth_um: PosFloat | None = None
    """Box extent along the beam at 0° (shape = 'box')."""
    height_um: PosFloat
    """Extent along the rotation axis (y)."""
    material: MaterialName = "water"
    """Bulk material, for the dose: a formula, an xraylib NIST name or a named material."""
    density_g_per_cm3: PosFloat | None = None
    """Bulk density (default: the named material's or NIST's)."""
    medium: MediumName | None = None
    """Embedding medium: what fills the sample around the phantom's structures — between and
    inside the fibres (fibre_bundle), between the wires and vias (integrated_circuit: its
    dielectric), between the spokes (siemens_star). A material name or "vacuum". Default: the
    phantom's own medium; when set it overrides ``fibres.matrix_material`` or
    ``circuit.dielectric_material`` (a star's own is vacuum). Not used by the uniform
    phantom."""
    fibres: FibreBundle = FibreBundle()
    circuit: IntegratedCircuit = IntegratedCircuit()
    star: SiemensStar = SiemensStar()

    #: (table, field) holding each phantom's own embedding medium, which ``medium`` overrides
    OWN_MEDIUM_FIELDS: ClassVar[dict[str, tuple[str, str]]] = {
        "fibre_bundle": ("fibres", "matrix_material"),
        "integrated_circuit": ("circuit", "dielectric_material")}

    @property
    def medium_material(self) -> str | None:
        """The embedding medium in effect: ``medium`` or the phantom's own (None for the
        uniform phantom)."""
        return self.medium if self.medium is not None else self._own_medium()

    def _own_medium(self) -> str | None:
        return {"fibre_bundle": self.fibres.matrix_material,
                "integrated_circuit": self.circuit.dielectric_material,
                "siemens_star": "vacuum"}.get(self.phantom)

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        # a medium equal to the phantom's own changes nothing: it leaves the dump (and the
        # shipped calibration keys) as they were before the field existed
        data = handler(self)
        own = self._own_medium()
        if self.medium is None or (own is not None and _same_medium(self.medium, own)):
            data.pop("medium", None)
        return data

    @model_validator(mode="after")
    def _medium(self):
        if self.medium is None:
            return self
        if self.phantom == "uniform":
            raise ValueError(f"medium = {self.medium!r}: the uniform phantom has no embedding "
                             f"medium (its material is 'material'); leave medium out")
        own = self.OWN_MEDIUM_FIELDS.get(self.phantom)
        if own is not None:
            table, name = own
            sub = getattr(self, table)
            if name in sub.model_fields_set and not _same_medium(getattr(sub, name),
                                                                  self.medium):
                raise ValueError(f"medium = {self.medium!r} contradicts {table}.{name} = "
                                 f"{getattr(sub, name)!r}; set only one of them")
        return self

    @model_validator(mode="after")
    def _shape(self):
        if self.shape == "cylinder" and self.diameter_um is None:
            raise ValueError("shape = 'cylinder' needs diameter_um")
        if self.shape == "box" and (self.width_um is None or self.depth_um is None):
            raise ValueError("shape = 'box' needs width_um and depth_um")
        try:
            _materials.resolve(self.material, self.density_g_per_cm3, field="material")
        except TwinInputError as exc:
            raise ValueError(f"material {self.material!r}: {exc.allowed}") from None
        return self

    @property
    def cross_section_um(self) -> tuple[float, float]:
        """(extent along x, extent along the beam) at 0°."""
        if self.shape == "cylinder":
            return self.diameter_um, self.diameter_um
        return self.width_um, self.depth_um
