import gzip
import struct

import numpy as np
import pytest

from l4theory.convert import datasets as ds


def write_idx(path, arr, code=0x08, *, dims=None, gz=False, extra=b""):
    dims = arr.shape if dims is None else dims
    head = bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    dt = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    blob = head + np.asarray(arr).astype(dt).tobytes() + extra
    if gz:
        blob = gzip.compress(blob)
    path.write_bytes(blob)
    return path


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("code", [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E])
def test_idx_round_trip(tmp_path, gz, code):
    rng = np.random.default_rng(code)
    arr = rng.integers(0, 100, size=(3, 4, 5))
    got = ds.read_idx(write_idx(tmp_path / "a.idx", arr, code, gz=gz))
    assert got.shape == (3, 4, 5)
    assert got.dtype.isnative
    np.testing.assert_array_equal(got, arr)


@pytest.mark.parametrize("blob, msg", [
    (b"\x00\x00", "too short"),
    (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00", "not an IDX file"),
    (b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00", "unknown IDX element type"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
    (b"\x00\x00\x08\x03" + struct.pack(">I", 2), "truncated IDX header"),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 5) + b"\x00" * 4, "truncated or corrupt"),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 3) + b"\x00" * 4, "truncated or corrupt"),
    (b"\x00\x00\x0c\x03" + struct.pack(">III", 2**32 - 1, 2**32 - 1, 2**32 - 1), "above the limit"),
])
def test_idx_malformed(tmp_path, blob, msg):
    p = tmp_path / "bad.idx"
    p.write_bytes(blob)
    with pytest.raises(ValueError, match=msg):
        ds.read_idx(p)


def test_idx_bad_gzip(tmp_path):
    p = tmp_path / "bad.gz"
    p.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 100) + b"\x00" * 100)[:-12])
    with pytest.raises(ValueError, match="decompress|truncated"):
        ds.read_idx(p)


def make_fake_mnist(folder, n_train=7, n_test=5, gz=True):
    rng = np.random.default_rng(0)
    folder.mkdir(exist_ok=True)
    sfx = ".gz" if gz else ""
    for split, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{split}-images-idx3-ubyte{sfx}",
                  rng.integers(0, 256, (n, 28, 28)), gz=gz)
        write_idx(folder / f"{split}-labels-idx1-ubyte{sfx}", rng.integers(0, 10, n), gz=gz)
    return folder


@pytest.mark.parametrize("gz", [True, False])
def test_load_idx_dataset_and_env(tmp_path, monkeypatch, gz):
    folder = make_fake_mnist(tmp_path / "fm", gz=gz)
    monkeypatch.setenv(ds.FASHION_MNIST_ENV, str(folder))
    tr = ds.load_fashion_mnist("train")
    te = ds.load_fashion_mnist("test")
    assert tr.images.shape == (7, 1, 28, 28) and tr.images.dtype == np.uint8
    assert te.labels.shape == (5,) and te.labels.dtype == np.int64
    assert tr.classes[9] == "Ankle boot"
    monkeypatch.setenv(ds.MNIST_ENV, str(folder))
    assert len(ds.load_mnist("test")) == 5
    assert len(ds.load_fashion_mnist("test", path=folder)) == 5


def test_missing_data_message(tmp_path, monkeypatch):
    monkeypatch.setenv(ds.FASHION_MNIST_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(ds.DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        ds.load_fashion_mnist()
    with pytest.raises(ds.DatasetNotFoundError, match=ds.FASHION_MNIST_ENV):
        ds.load_fashion_mnist(path=tmp_path)
    monkeypatch.delenv(ds.MNIST_ENV, raising=False)
    with pytest.raises(ds.DatasetNotFoundError, match="MNIST"):
        ds.load_mnist()


def test_label_count_mismatch(tmp_path):
    folder = make_fake_mnist(tmp_path / "fm")
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(4), gz=True)
    with pytest.raises(ValueError, match="5 images but .* 4 labels"):
        ds.load_idx_dataset(folder, "test")
    with pytest.raises(ValueError, match="split"):
        ds.load_idx_dataset(folder, "val")


def write_cifar(path, images, labels):
    rec = np.concatenate([labels[:, None].astype(np.uint8),
                          images.reshape(len(labels), -1).astype(np.uint8)], axis=1)
    path.write_bytes(rec.tobytes())
    return path


def test_cifar10_reader(tmp_path):
    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 256, (3, 3, 32, 32), dtype=np.uint8)
    labs = np.array([3, 0, 9])
    # the official layout: 1024 red bytes, then green, then blue, each row-major
    p = write_cifar(tmp_path / "test_batch.bin", imgs, labs)
    raw = p.read_bytes()
    assert raw[1 + 1024] == imgs[0, 1, 0, 0] and raw[1 + 33] == imgs[0, 0, 1, 1]
    got_i, got_l = ds.read_cifar10_batch(p)
    np.testing.assert_array_equal(got_i, imgs)
    np.testing.assert_array_equal(got_l, labs)
    d = ds.load_cifar10(tmp_path, "test")
    assert d.images.shape == (3, 3, 32, 32) and d.classes[3] == "cat"
    with pytest.raises(ds.DatasetNotFoundError, match="cifar-10-binary"):
        ds.load_cifar10(tmp_path, "train")


def test_cifar10_malformed(tmp_path):
    p = tmp_path / "b.bin"
    p.write_bytes(b"\x00" * 3000)
    with pytest.raises(ValueError, match="multiple of the CIFAR-10 record"):
        ds.read_cifar10_batch(p)
    p.write_bytes(b"\x0b" + b"\x00" * 3072)
    with pytest.raises(ValueError, match="outside 0..9"):
        ds.read_cifar10_batch(p)
    p.write_bytes(b"")
    with pytest.raises(ValueError):
        ds.read_cifar10_batch(p)


def test_normalize():
    x = np.array([0, 127, 128, 255], dtype=np.uint8)
    s = ds.normalize(x)
    assert s.dtype == np.float32 and s[0] == -1 and s[-1] == 1
    u = ds.normalize(x, "unit")
    assert u[0] == 0 and u[-1] == 1
    with pytest.raises(ValueError, match="uint8"):
        ds.normalize(x.astype(float))
    with pytest.raises(ValueError, match="mode"):
        ds.normalize(x, "other")


def test_real_fashion_mnist():
    try:
        folder = ds.find_fashion_mnist()
    except ds.DatasetNotFoundError as exc:
        pytest.skip(str(exc))
    te = ds.load_fashion_mnist("test", path=folder)
    assert te.images.shape == (10000, 1, 28, 28)
    assert np.bincount(te.labels).tolist() == [1000] * 10
