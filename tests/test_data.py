"""The IDX reader on small files the tests write themselves: good files and each bad case."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from training.data import IMAGES_MAGIC, LABELS_MAGIC, DataError, Mnist, load_from_dir, read_idx


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    magic = magic if magic is not None else (0x0800 | array.ndim)
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()


def write_set(folder: Path, train: int = 5, test: int = 3, gz: bool = True, **override: bytes) -> Path:
    rng = np.random.default_rng(0)
    files = {
        "train-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (train, 28, 28))),
        "train-labels-idx1-ubyte": idx_bytes(rng.integers(0, 10, train)),
        "t10k-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (test, 28, 28))),
        "t10k-labels-idx1-ubyte": idx_bytes(rng.integers(0, 10, test)),
    }
    files.update(override)
    for stem, data in files.items():
        (folder / (stem + ".gz" if gz else stem)).write_bytes(gzip.compress(data) if gz else data)
    return folder


@pytest.mark.parametrize("gz", [True, False], ids=["gzipped", "plain"])
def test_reads_good_files(tmp_path: Path, gz: bool) -> None:
    images = np.arange(2 * 28 * 28, dtype=np.uint32).reshape(2, 28, 28) % 256
    path = tmp_path / ("x.gz" if gz else "x")
    data = idx_bytes(images)
    path.write_bytes(gzip.compress(data) if gz else data)
    np.testing.assert_array_equal(read_idx(path, IMAGES_MAGIC), images)

    mnist = load_from_dir(write_set(tmp_path, gz=gz))
    assert mnist.train_images.shape == (5, 28, 28) and mnist.test_labels.shape == (3,)
    assert len(mnist.checksums) == 4 and all(len(digest) == 64 for digest in mnist.checksums.values())


def test_reads_the_real_mnist(mnist: Mnist) -> None:
    assert mnist.train_images.shape == (60000, 28, 28) and mnist.test_images.shape == (10000, 28, 28)
    assert list(mnist.train_labels[:5]) == [5, 0, 4, 1, 9] and list(mnist.test_labels[:5]) == [7, 2, 1, 0, 4]
    assert mnist.checksums["t10k-labels-idx1-ubyte.gz"].startswith("b91679a0")


def test_missing_file(tmp_path: Path) -> None:
    write_set(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: file not found"):
        load_from_dir(tmp_path)


def test_wrong_magic(tmp_path: Path) -> None:
    labels = idx_bytes(np.zeros(5), magic=IMAGES_MAGIC)  # an images magic on a labels file
    write_set(tmp_path, **{"train-labels-idx1-ubyte": labels})
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz: magic number 0x00000803, expected 0x00000801"):
        load_from_dir(tmp_path)


def test_truncated_file(tmp_path: Path) -> None:
    images = idx_bytes(np.zeros((5, 28, 28)))[:-100]
    write_set(tmp_path, **{"train-images-idx3-ubyte": images})
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: .* expected 3936 .*\(truncated\)"):
        load_from_dir(tmp_path)


def test_truncated_gzip_stream(tmp_path: Path) -> None:
    path = tmp_path / "t.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(50)))[:-12])
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        read_idx(path, LABELS_MAGIC)


def test_counts_disagree(tmp_path: Path) -> None:
    write_set(tmp_path, **{"t10k-labels-idx1-ubyte": idx_bytes(np.zeros(4))})
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: 4 labels, expected 3"):
        load_from_dir(tmp_path)


def test_label_out_of_range(tmp_path: Path) -> None:
    write_set(tmp_path, **{"train-labels-idx1-ubyte": idx_bytes(np.full(5, 11))})
    with pytest.raises(DataError, match="label 11 found, expected digits 0-9"):
        load_from_dir(tmp_path)
