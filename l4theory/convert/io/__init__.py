"""Read and write network weights: safetensors, npz and ONNX.

Modules
-------
``_atomic``
    Atomic, non-overwriting writes (a temp file linked into place).
``safetensors``
    A small validated pure-Python reader/writer (core install, no extras): every size,
    offset and dtype is checked against the file length, tensors must tile the data
    section, then tensors are read one by one. The spec is stored in the header's
    ``__metadata__`` under ``l4theory_spec``.
``npz``
    NumPy zip archives read member by member with validated ``.npy`` headers, never
    unpickling; the spec is an entry ``__l4theory_spec__`` (UTF-8 JSON as uint8).
``spec``
    The JSON layer spec <-> :class:`~l4theory.convert.network.Network`, including
    ``batchnorm`` layers folded into the conv/linear layer before them.
``onnx`` (needs the ``onnx`` package, the ``io`` extra)
    The layer sequence inferred from the graph, one handler per op; writing builds a
    fresh opset-17 graph with the spec in ``metadata_props``.

For safetensors/npz without an embedded spec, a side-car file ``<stem>.spec.json`` next to
the weights (or an explicit ``spec=`` argument) gives the layer sequence.
Writing never replaces an existing file unless ``overwrite=True``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..network import Network
from ._atomic import atomic_write
from .npz import NPZ_SPEC_KEY, read_npz, write_npz
from .onnx import read_onnx, write_onnx
from .safetensors import MAX_FILE_BYTES, MAX_HEADER_BYTES, read_safetensors, write_safetensors
from .spec import (
    SPEC_KEY,
    SPEC_LAYER_TYPES,
    fold_batchnorm,
    network_from_spec,
    spec_from_network,
    tensors_of,
)

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_HEADER_BYTES",
    "NPZ_SPEC_KEY",
    "SPEC_KEY",
    "SPEC_LAYER_TYPES",
    "atomic_write",
    "fold_batchnorm",
    "format_of",
    "load_network",
    "network_from_spec",
    "read_npz",
    "read_onnx",
    "read_safetensors",
    "save_network",
    "spec_from_network",
    "tensors_of",
    "write_npz",
    "write_onnx",
    "write_safetensors",
]

FORMATS = {".safetensors": "safetensors", ".npz": "npz", ".onnx": "onnx"}


def format_of(path, fmt: str | None = None) -> str:
    """The weight format of ``path``: ``fmt`` if given (checked), else from the suffix.

    Parameters
    ----------
    path : str or os.PathLike
    fmt : {"safetensors", "npz", "onnx"}, optional

    Returns
    -------
    str
        One of ``"safetensors"``, ``"npz"``, ``"onnx"``.
    """
    path = Path(path)
    if fmt is not None:
        if fmt not in FORMATS.values():
            raise ValueError(f"format must be one of {sorted(FORMATS.values())}, got {fmt!r}")
        return fmt
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise ValueError(f"{path}: cannot tell the format from the suffix {path.suffix!r} "
                         f"(known: {', '.join(FORMATS)}); pass format=") from None




def _spec_text(path: Path, spec, meta: dict) -> tuple:
    """The spec to use for ``path`` and where it came from: argument, embedded, side-car."""
    if spec is None:
        if SPEC_KEY in meta:
            return meta[SPEC_KEY], str(path)
        side = path.with_name(path.stem + ".spec.json")
        if not side.is_file():
            raise ValueError(f"{path}: no embedded l4theory spec and no side-car {side.name};"
                             " pass spec= (see docs/conversion.md for the format)")
        return side.read_text(encoding="utf-8"), str(side)
    if isinstance(spec, os.PathLike) or (isinstance(spec, str)
                                         and not spec.lstrip().startswith("{")):
        return Path(spec).read_text(encoding="utf-8"), str(spec)
    return spec, str(path)


def load_network(path, *, spec=None, format: str | None = None) -> Network:  # noqa: A002
    """Load a network from safetensors, npz or ONNX.

    Parameters
    ----------
    path : str or os.PathLike
    spec : dict, str or os.PathLike, optional
        The layer spec for safetensors/npz files (a dict, JSON text, or a path to a
        JSON file). By default the embedded spec, else ``<stem>.spec.json`` next to it.
    format : {"safetensors", "npz", "onnx"}, optional
        By default from the suffix.

    Returns
    -------
    Network
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    fmt = format_of(path, format)
    if fmt == "onnx":
        if spec is not None:
            raise ValueError("spec= applies to safetensors/npz; ONNX carries its own graph")
        return read_onnx(path)
    tensors, meta = read_safetensors(path) if fmt == "safetensors" else read_npz(path)
    text, source = _spec_text(path, spec, meta)
    return network_from_spec(text, tensors, source=source)


def save_network(net: Network, path, *, format: str | None = None,  # noqa: A002
                 overwrite: bool = False, provenance: dict | None = None) -> Path:
    """Write ``net`` (weights plus embedded spec) as safetensors, npz or ONNX.

    Parameters
    ----------
    net : Network
    path : str or os.PathLike
    format : {"safetensors", "npz", "onnx"}, optional
        By default from the suffix.
    overwrite : bool
        Replace an existing file (otherwise :class:`FileExistsError`, nothing written).
    provenance : dict, optional
        JSON-serialisable record of what was done (e.g. ``{"method": "l4", "r_s": 1.0,
        "v_th0": ..., "scales": ...}``), appended to the spec's ``history`` list.

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    fmt = format_of(path, format)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    if provenance is not None:
        try:
            json.dumps(provenance)
        except TypeError as exc:
            raise ValueError(f"provenance must be JSON-serialisable ({exc})") from None
        net = net.copy()
        net.metadata = dict(net.metadata)
        net.metadata["history"] = [*net.metadata.get("history", []), provenance]
    if fmt == "onnx":
        return write_onnx(net, path, overwrite=overwrite)
    meta = {SPEC_KEY: json.dumps(spec_from_network(net))}
    writer = write_safetensors if fmt == "safetensors" else write_npz
    return writer(path, tensors_of(net), meta, overwrite=overwrite)
