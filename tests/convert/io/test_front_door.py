"""load_network / save_network / format_of for the formats that need no extra."""

import numpy as np
import pytest

from l4theory.convert import io

from .helpers import tiny_net


def test_format_of():
    assert io.format_of("a/b.SafeTensors") == "safetensors"
    assert io.format_of("m.npz") == "npz" and io.format_of("m.onnx") == "onnx"
    assert io.format_of("m.bin", "npz") == "npz"
    with pytest.raises(ValueError, match="cannot tell the format from the suffix '.pt'"):
        io.format_of("m.pt")
    with pytest.raises(ValueError, match="format must be one of"):
        io.format_of("m.npz", "pickle")


@pytest.mark.parametrize("ext", [".safetensors", ".npz"])
def test_save_network_provenance(tmp_path, ext):
    rng = np.random.default_rng(5)
    net = tiny_net(rng)
    x = rng.normal(size=(3, 1, 6, 6)).astype(np.float32)
    prov = {"method": "l4", "r_s": 1.0, "v_th0": 2.5, "scales": [1.0, 0.9]}
    p = io.save_network(net, tmp_path / f"m{ext}", provenance=prov)
    back = io.load_network(p)
    assert back.metadata["history"] == [prov]
    assert [lay.name for lay in back.layers] == [lay.name for lay in net.layers]
    np.testing.assert_array_equal(back.forward(x), net.forward(x))
    q = io.save_network(back, tmp_path / f"m2{ext}", provenance={"method": "again"})
    assert [h["method"] for h in io.load_network(q).metadata["history"]] == ["l4", "again"]
    with pytest.raises(FileExistsError):
        io.save_network(net, p)
    assert "history" not in net.metadata  # the caller's network is untouched
    with pytest.raises(ValueError, match="JSON"):
        io.save_network(net, tmp_path / f"m3{ext}", provenance={"a": object()})
    with pytest.raises(FileNotFoundError, match="no such file"):
        io.load_network(tmp_path / f"missing{ext}")
    assert io.load_network(p, format=ext[1:]).shapes == net.shapes
