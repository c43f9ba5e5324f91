"""Real image datasets: IDX files (Fashion-MNIST, MNIST) and CIFAR-10 binary files.

Nothing here downloads anything. Fashion-MNIST is looked up, in order, at

1. an explicit ``path`` argument (a folder holding the four IDX files),
2. the folder named by the environment variable ``L4THEORY_FASHION_MNIST``,
3. ``/usr/share/datasets/fashion-mnist``, where Debian's ``dataset-fashion-mnist``
   package installs the original gzipped IDX files.

MNIST uses the same IDX format; pass its folder explicitly or set ``L4THEORY_MNIST``.

Every reader validates the file against its header before allocating: the magic number,
the element type code, the number of dimensions, that the declared sizes are sane and that
the file holds exactly the declared number of bytes. A malformed file raises
:class:`ValueError` naming the file and the problem.

Pixel convention of the shipped models
--------------------------------------
The shipped networks (``models/``) were trained on pixels scaled to ``[-1, 1]``
(``x / 127.5 - 1``, i.e. ``(x/255 - 0.5)/0.5``), the range the ``signed`` encoder of
Rathi et al. (2020) expects. Use :func:`normalize` with ``mode="signed"`` (the default).
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

__all__ = [
    "CIFAR10_CLASSES",
    "DEBIAN_FASHION_MNIST_DIR",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_ENV",
    "MNIST_ENV",
    "Dataset",
    "DatasetNotFoundError",
    "find_fashion_mnist",
    "load_cifar10",
    "load_fashion_mnist",
    "load_idx_dataset",
    "load_mnist",
    "normalize",
    "read_cifar10_batch",
    "read_idx",
]

DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_ENV = "L4THEORY_FASHION_MNIST"
MNIST_ENV = "L4THEORY_MNIST"

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)

#: IDX element type codes -> big-endian NumPy dtypes.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
#: Refuse IDX payloads above this many bytes (the largest real IDX file, EMNIST, is < 1 GB).
MAX_IDX_BYTES = 2**31
_IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_CIFAR_RECORD = 1 + 3 * 32 * 32


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files were not found; the message says how to get them."""


@dataclass(frozen=True)
class Dataset:
    """Images and labels of one split.

    Attributes
    ----------
    images : numpy.ndarray, shape (n, C, H, W), uint8
        Raw pixels (0..255), channels first.
    labels : numpy.ndarray, shape (n,), int64
        Class indices.
    classes : tuple of str
        Class names, indexed by label.
    files : tuple of pathlib.Path
        The files the split was read from.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple
    files: tuple

    def __len__(self) -> int:
        return int(self.labels.shape[0])


# --------------------------------------------------------------------------------------
# IDX
# --------------------------------------------------------------------------------------
def _read_bytes(path: Path, limit: int) -> bytes:
    """Read a plain or gzipped file, refusing more than ``limit`` bytes of content."""
    with open(path, "rb") as fh:
        head = fh.read(2)
    opener = gzip.open if head == b"\x1f\x8b" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read(limit + 1)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise ValueError(f"{path}: cannot decompress ({exc})") from exc
    if len(data) > limit:
        raise ValueError(f"{path}: file content exceeds the limit of {limit} bytes")
    return data


def read_idx(path: str | os.PathLike[str], *, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Read one IDX file (plain or gzip-compressed) into a native-endian array.

    Parameters
    ----------
    path : str or os.PathLike
        The file; gzip compression is detected from its first two bytes.
    max_bytes : int
        Refuse files whose header declares (or whose content holds) more than this many
        bytes of data.

    Returns
    -------
    numpy.ndarray
        Shape as declared by the header (e.g. ``(n, 28, 28)`` images, ``(n,)`` labels),
        dtype as declared (``uint8`` for (Fashion-)MNIST), native byte order.

    Raises
    ------
    ValueError
        Bad magic number, unknown type code, zero dimensions, absurd sizes, or a file
        length that differs from what the header declares.
    """
    path = Path(path)
    data = _read_bytes(path, max_bytes + 4 + 4 * 255)
    if len(data) < 4:
        raise ValueError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(
            f"{path}: not an IDX file (magic bytes {data[:4].hex()}, expected 0000TTNN)"
        )
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise ValueError(
            f"{path}: unknown IDX element type code 0x{code:02x} "
            f"(known: {', '.join(f'0x{c:02x}' for c in _IDX_DTYPES)})"
        )
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} of {header_len} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    count = 1
    for d in dims:  # Python ints: no overflow
        count *= d
    nbytes = count * dtype.itemsize
    if nbytes > max_bytes:
        raise ValueError(
            f"{path}: IDX header declares dims {dims} = {nbytes} bytes, above the limit "
            f"of {max_bytes} bytes"
        )
    if len(data) - header_len != nbytes:
        raise ValueError(
            f"{path}: IDX header declares dims {dims} ({nbytes} bytes of data) but the file "
            f"holds {len(data) - header_len} bytes after the header (truncated or corrupt)"
        )
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=header_len).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        p = folder / name
        if p.is_file():
            return p
    return None


def load_idx_dataset(folder: str | os.PathLike[str], split: str = "test", *, classes: tuple = ()) -> Dataset:
    """Load a split of an MNIST-style dataset from a folder of IDX files.

    Parameters
    ----------
    folder : str or os.PathLike
        Folder holding ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``.
    split : {"train", "test"}
        Which split.
    classes : tuple of str
        Class names stored in the result.

    Returns
    -------
    Dataset
        ``images`` shape (n, 1, H, W) uint8, ``labels`` shape (n,) int64.
    """
    if split not in _IDX_NAMES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = Path(folder)
    img_stem, lab_stem = _IDX_NAMES[split]
    img_path, lab_path = _find_idx(folder, img_stem), _find_idx(folder, lab_stem)
    missing = [s for s, p in ((img_stem, img_path), (lab_stem, lab_path)) if p is None]
    if missing:
        raise DatasetNotFoundError(f"{folder}: missing {', '.join(m + '[.gz]' for m in missing)}")
    images = read_idx(img_path)
    labels = read_idx(lab_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"{img_path}: expected uint8 images of shape (n, H, W), got {images.dtype} "
            f"{images.shape}"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(f"{lab_path}: expected uint8 labels of shape (n,), got {labels.shape}")
    if labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"{img_path} holds {images.shape[0]} images but {lab_path} holds "
            f"{labels.shape[0]} labels"
        )
    if classes and labels.size and int(labels.max()) >= len(classes):
        raise ValueError(f"{lab_path}: label {int(labels.max())} >= {len(classes)} classes")
    return Dataset(images[:, None], labels.astype(np.int64), tuple(classes),
                   (img_path, lab_path))


_FMNIST_HELP = (
    "Fashion-MNIST not found. Install it with `apt-get install dataset-fashion-mnist` "
    f"(Debian/Ubuntu; files land in {DEBIAN_FASHION_MNIST_DIR}), or put the four original "
    "IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
    "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz from "
    "https://github.com/zalandoresearch/fashion-mnist) in a folder and pass it as `path` "
    f"or set {FASHION_MNIST_ENV}=/that/folder."
)


def find_fashion_mnist(path: str | os.PathLike[str] | None = None) -> Path:
    """Return the folder holding the Fashion-MNIST IDX files.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Explicit folder; if given, it must hold the files (no fallback).

    Returns
    -------
    pathlib.Path
        The folder: ``path``, else ``$L4THEORY_FASHION_MNIST``, else the Debian package
        folder, the first that holds all four IDX files.

    Raises
    ------
    DatasetNotFoundError
        With instructions on how to install the data.
    """
    if path is not None:
        candidates = [("path argument", Path(path))]
    else:
        candidates = []
        env = os.environ.get(FASHION_MNIST_ENV)
        if env:
            candidates.append((f"${FASHION_MNIST_ENV}", Path(env)))
        candidates.append(("Debian package folder", DEBIAN_FASHION_MNIST_DIR))
    tried = []
    for what, folder in candidates:
        if all(_find_idx(folder, s) is not None for pair in _IDX_NAMES.values() for s in pair):
            return folder
        tried.append(f"{what} {folder}")
        if path is not None or what.startswith("$"):
            # an explicit choice that fails must not silently fall back
            break
    raise DatasetNotFoundError(f"{_FMNIST_HELP} (looked in: {'; '.join(tried)})")


def load_fashion_mnist(split: str = "test", path: str | os.PathLike[str] | None = None) -> Dataset:
    """Load a split of Fashion-MNIST (Xiao et al. 2017) from the original IDX files.

    Parameters
    ----------
    split : {"train", "test"}
        60000 training or 10000 test images.
    path : str or os.PathLike, optional
        Folder with the IDX files; by default ``$L4THEORY_FASHION_MNIST`` or the Debian
        package folder ``/usr/share/datasets/fashion-mnist``.

    Returns
    -------
    Dataset
        ``images`` shape (n, 1, 28, 28) uint8, ``labels`` shape (n,) int64.
    """
    return load_idx_dataset(find_fashion_mnist(path), split, classes=FASHION_MNIST_CLASSES)


def load_mnist(split: str = "test", path: str | os.PathLike[str] | None = None) -> Dataset:
    """Load a split of MNIST from a folder of the original IDX files.

    Parameters
    ----------
    split : {"train", "test"}
        Which split.
    path : str or os.PathLike, optional
        Folder with the IDX files; by default ``$L4THEORY_MNIST``.

    Returns
    -------
    Dataset
        ``images`` shape (n, 1, 28, 28) uint8, ``labels`` shape (n,) int64, classes "0".."9".

    Raises
    ------
    DatasetNotFoundError
        Without ``path`` and without ``$L4THEORY_MNIST`` (the message says what to set).
    """
    if path is None:
        path = os.environ.get(MNIST_ENV)
    if not path:
        raise DatasetNotFoundError(
            "MNIST not found: pass the folder holding the original IDX files "
            "(train-images-idx3-ubyte.gz etc., from https://yann.lecun.com/exdb/mnist/ or "
            f"Debian's `mnist` package) as `path`, or set {MNIST_ENV}=/that/folder."
        )
    return load_idx_dataset(path, split, classes=tuple(str(i) for i in range(10)))


# --------------------------------------------------------------------------------------
# CIFAR-10 binary version
# --------------------------------------------------------------------------------------
def read_cifar10_batch(path: str | os.PathLike[str], *, max_records: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """Read one file of the CIFAR-10 binary version (``data_batch_1.bin`` etc.).

    Each record is 1 label byte followed by 3072 pixel bytes (1024 red, 1024 green,
    1024 blue, row-major 32x32).

    Parameters
    ----------
    path : str or os.PathLike
        The ``.bin`` file.
    max_records : int
        Refuse files holding more records than this.

    Returns
    -------
    images : numpy.ndarray, shape (n, 3, 32, 32), uint8
    labels : numpy.ndarray, shape (n,), int64
    """
    path = Path(path)
    size = path.stat().st_size
    if size == 0 or size % _CIFAR_RECORD:
        raise ValueError(
            f"{path}: size {size} bytes is not a positive multiple of the CIFAR-10 record "
            f"size {_CIFAR_RECORD} (1 label byte + 3072 pixel bytes)"
        )
    n = size // _CIFAR_RECORD
    if n > max_records:
        raise ValueError(f"{path}: {n} records exceed the limit of {max_records}")
    raw = np.fromfile(path, dtype=np.uint8).reshape(n, _CIFAR_RECORD)
    labels = raw[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise ValueError(f"{path}: label {int(labels.max())} outside 0..9 (not a CIFAR-10 file?)")
    images = raw[:, 1:].reshape(n, 3, 32, 32).copy()
    return images, labels


def load_cifar10(path: str | os.PathLike[str], split: str = "test") -> Dataset:
    """Load a split of CIFAR-10 from the folder of its official binary version.

    Parameters
    ----------
    path : str or os.PathLike
        Folder ``cifar-10-batches-bin`` holding ``data_batch_{1..5}.bin`` and
        ``test_batch.bin`` (from https://www.cs.toronto.edu/~kriz/cifar.html, "CIFAR-10
        binary version (suitable for C programs)").
    split : {"train", "test"}
        Which split.

    Returns
    -------
    Dataset
        ``images`` shape (n, 3, 32, 32) uint8, ``labels`` shape (n,) int64.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = Path(path)
    names = ["test_batch.bin"] if split == "test" else [f"data_batch_{i}.bin" for i in range(1, 6)]
    files = [folder / n for n in names]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"CIFAR-10 binary files missing: {', '.join(missing)}. Download "
            "cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html, "
            "unpack it and pass the cifar-10-batches-bin folder."
        )
    parts = [read_cifar10_batch(f) for f in files]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return Dataset(images, labels, CIFAR10_CLASSES, tuple(files))


# --------------------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------------------
def normalize(images: ArrayLike, mode: str = "signed", dtype: DTypeLike = np.float32) -> np.ndarray:
    """Scale uint8 pixels to the range a network expects.

    Parameters
    ----------
    images : array_like of uint8, any shape
        Raw pixels 0..255.
    mode : {"signed", "unit"}
        ``"signed"``: ``x/127.5 - 1`` in ``[-1, 1]`` (the shipped models; the signed
        encoder's range). ``"unit"``: ``x/255`` in ``[0, 1]`` (the Bernoulli encoder's range).
    dtype : numpy dtype
        Output dtype (float32 by default).

    Returns
    -------
    numpy.ndarray
        Same shape as ``images``.
    """
    arr = np.asarray(images)
    if arr.dtype != np.uint8:
        raise ValueError(f"images must be uint8 pixels 0..255, got dtype {arr.dtype}")
    x = arr.astype(dtype)
    if mode == "signed":
        return x / 127.5 - 1.0
    if mode == "unit":
        return x / 255.0
    raise ValueError(f"mode must be 'signed' or 'unit', got {mode!r}")


def load_named(spec: str, split: str = "test") -> Dataset:
    """Load a dataset named on the command line.

    Parameters
    ----------
    spec : str
        ``"fashion-mnist"`` (found as :func:`find_fashion_mnist` does), a folder of IDX
        files, ``"mnist:FOLDER"`` or ``"cifar10:FOLDER"``.
    split : {"train", "test"}

    Returns
    -------
    Dataset
    """
    if spec == "fashion-mnist":
        return load_fashion_mnist(split)
    if spec.startswith("cifar10:"):
        return load_cifar10(spec.split(":", 1)[1], split)
    if spec.startswith("mnist:"):
        return load_mnist(split, spec.split(":", 1)[1])
    if Path(spec).is_dir():
        return load_idx_dataset(spec, split)
    raise ValueError(f"--data {spec!r}: expected 'fashion-mnist', a folder of IDX files, "
                     "'mnist:FOLDER' or 'cifar10:FOLDER'")
