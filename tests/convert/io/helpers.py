"""Small networks and hand-built files shared by the io tests (no optional packages)."""

import json
import os
import struct
import zipfile

import numpy as np

from l4theory.convert.network import AvgPool2d, Conv2d, Flatten, Linear, Network, ReLU


def tiny_net(rng, dtype=np.float32):
    return Network((1, 6, 6), [
        Conv2d(rng.normal(size=(2, 1, 3, 3)).astype(dtype), rng.normal(size=2).astype(dtype),
               padding=1, name="conv1"),
        ReLU(), AvgPool2d(2), Flatten(),
        Linear(rng.normal(size=(3, 18)).astype(dtype), None, name="fc"),
    ], name="tiny")


def tiny_tensors(net):
    return {"conv1.weight": net.layers[0].weight, "conv1.bias": net.layers[0].bias,
            "fc.weight": net.layers[4].weight}


def listing(folder):
    return sorted(os.listdir(folder))


def st_bytes(header: dict, data: bytes, hlen=None) -> bytes:
    """A safetensors file from a header dict and raw data (``hlen`` overrides the length)."""
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h) if hlen is None else hlen) + h + data


def npy_bytes(header: str, data: bytes, version=(1, 0)) -> bytes:
    """A .npy member from a header dict literal (padded as numpy pads it) and raw data."""
    h = header.encode("latin1")
    size_fmt = "<H" if version == (1, 0) else "<I"
    pre = 6 + 2 + struct.calcsize(size_fmt)
    h += b" " * ((-(pre + len(h) + 1)) % 64) + b"\n"
    return b"\x93NUMPY" + bytes(version) + struct.pack(size_fmt, len(h)) + h + data


def write_zip(path, members: dict, compression=zipfile.ZIP_STORED):
    """A zip archive with ``{name: bytes}`` members (consistent CRCs and sizes)."""
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for name, blob in members.items():
            z.writestr(name, blob)
    return path
