"""Loading MNIST: the standard IDX files from a folder, or Keras's own download.

Every problem with the files is raised as `DataError` with one line that names the file and what was expected,
before any training starts.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.contract import IMAGE_SIDE

IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension

FILE_STEMS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


class DataError(Exception):
    """The data set is missing or malformed; the message is one line naming the file."""


@dataclass(frozen=True)
class Mnist:
    """The four MNIST arrays (images uint8 [N, 28, 28], 0 = background; labels uint8 [N]) and their provenance."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str
    checksums: dict[str, str] = field(default_factory=dict)


def read_idx(path: Path, expected_magic: int) -> np.ndarray:
    """Read one IDX file (gzipped or plain) into a uint8 array, checking magic number and declared length."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise DataError(f"{path}: corrupt or truncated gzip data ({error})") from None
    if len(raw) < 4:
        raise DataError(f"{path}: truncated: {len(raw)} bytes, expected at least a 4-byte header")
    (magic,) = struct.unpack(">I", raw[:4])
    if magic != expected_magic:
        raise DataError(f"{path}: magic number 0x{magic:08x}, expected 0x{expected_magic:08x}")
    ndim = magic & 0xFF
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DataError(f"{path}: truncated header: {len(raw)} bytes, expected {header_size}")
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    expected_size = header_size + int(np.prod(shape))
    if len(raw) != expected_size:
        raise DataError(
            f"{path}: {len(raw)} bytes, expected {expected_size} for shape {'x'.join(map(str, shape))}"
            + (" (truncated)" if len(raw) < expected_size else " (trailing data)")
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape)


def find_file(data_dir: Path, stem: str) -> Path:
    """The gzipped file if present, else the plain one (the error names the gzipped name users download)."""
    for candidate in (data_dir / f"{stem}.gz", data_dir / stem):
        if candidate.exists():
            return candidate
    raise DataError(f"{data_dir / (stem + '.gz')}: file not found (nor {stem} uncompressed)")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_from_dir(data_dir: Path) -> Mnist:
    """Read and check the four standard IDX files in `data_dir`."""
    paths = {key: find_file(data_dir, stem) for key, stem in FILE_STEMS.items()}
    arrays = {
        key: read_idx(path, IMAGES_MAGIC if key.endswith("images") else LABELS_MAGIC) for key, path in paths.items()
    }
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        image_path, label_path = paths[f"{split}_images"], paths[f"{split}_labels"]
        if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
            raise DataError(f"{image_path}: images of shape {images.shape[1:]}, expected (28, 28)")
        if images.shape[0] != labels.shape[0]:
            raise DataError(
                f"{label_path}: {labels.shape[0]} labels, expected {images.shape[0]} to match {image_path.name}"
            )
        if labels.size and labels.max() > 9:
            raise DataError(f"{label_path}: label {int(labels.max())} found, expected digits 0-9")
    return Mnist(
        **arrays,
        source=str(data_dir),
        checksums={path.name: sha256_of(path) for path in paths.values()},
    )


def load_from_keras() -> Mnist:
    """Keras's own MNIST download (cached under ~/.keras/datasets), for users with internet access."""
    import keras  # imported here: TensorFlow's import is slow and the IDX reader must not need it

    try:
        (train_images, train_labels), (test_images, test_labels) = keras.datasets.mnist.load_data()
    except Exception as error:  # Keras raises several kinds here (URLError, OSError, Exception)
        raise DataError(
            f"could not download MNIST through Keras ({type(error).__name__}: {error}); "
            "with no network, pass --data-dir DIR pointing to the four MNIST IDX files "
            "(train-images-idx3-ubyte.gz, ...), or set MNIST_DATA_DIR"
        ) from None
    return Mnist(train_images, train_labels, test_images, test_labels, source="keras.datasets.mnist")


def load_mnist(data_dir: Path | None) -> Mnist:
    return load_from_dir(data_dir) if data_dir is not None else load_from_keras()
