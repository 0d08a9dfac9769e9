"""Ptychographic reconstruction: from frames and positions to object, probe modes and refined
positions.

What the package offers, in the order a reconstruction runs:

* :mod:`~twin.recon.options`: :class:`Options`, the one typed model of every setting (with
  :class:`Algorithm`, :class:`PositionCorrection` and the other choices as enums), and the
  engines' :class:`Start` and :class:`Result`;
* :mod:`~twin.recon.auto`: :func:`prepare` / :func:`auto_options`, the choices left to the
  data ("auto": engine, probe modes, position correction, starting probe), made before the
  engines run;
* :mod:`~twin.recon.engines`: the engines (ePIE, rPIE, LSQML, multislice; one beam or
  several) on a :class:`State` (:mod:`~twin.recon.state`; the frames read by
  :mod:`~twin.recon.frames`, the starting probe modes made by :mod:`~twin.recon.probes`), one
  :func:`minibatch_step` per batch, update rules registered by name (:data:`UPDATES`),
  positions refined by :mod:`~twin.recon.positions`;
* :mod:`~twin.recon.controls`: starting files, resume, background, previews.

:func:`reconstruct` is the whole of it: the automatic choices, then the engines.
"""

from __future__ import annotations

import importlib

# names and the module that defines each, imported when first asked for: the scenario schema
# reads the options without loading the engines
_WHERE = {
    **dict.fromkeys(["prepare", "auto_options", "AutoChoice", "model_probe"], "auto"),
    **dict.fromkeys(["minibatch_step", "multislice_step", "UPDATES"], "engines"),
    **dict.fromkeys(["Options", "AUTO", "ALGORITHMS", "Algorithm", "PositionCorrection",
                     "NoiseModel", "LsqmlSteps", "SubpixelShift", "Backend", "Start", "Result"],
                    "options"),
    **dict.fromkeys(["fit_modes", "orthogonalize_modes"], "probes"),
    "frame_statistics": "frames",
    "State": "state",
}

__all__ = ["reconstruct", *_WHERE]


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"twin.recon.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'twin.recon' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


def reconstruct(data, opts=None, *, log=None, **kw):
    """The automatic choices (:func:`prepare`), then the engines
    (:func:`twin.recon.engines.reconstruct`, whose keywords ``kw`` takes).

    Parameters
    ----------
    data : twin.io.datamodel.PtychoData
        Frames (in memory or streamed), positions, geometry and (optionally) illumination.
    opts : Options, optional
        Settings (default: ``Options()``); "auto" fields are chosen from the data first.
    log : callable, optional
        Called with a line for every automatic choice.
    **kw
        Passed to :func:`twin.recon.engines.reconstruct` (``progress``, ``callback``,
        ``start``, ``state_every``, ``on_state``).

    Returns
    -------
    Result
        ``Result.chosen``: the automatic choices and why.
    """
    from twin.recon import engines
    from twin.recon.auto import prepare
    from twin.recon.options import Options

    data, opts, chosen = prepare(data, Options() if opts is None else opts, log=log)
    return engines.reconstruct(data, opts, chosen=chosen, **kw)
