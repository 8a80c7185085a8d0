"""The training job for real: a short run on real MNIST, its export, its report, and its refusals."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT
from training.data import Mnist

REPORT_PICTURES = ("history.png", "confusion_matrix.png", "training_samples.png", "misclassified.png")


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-m", "training", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def short_run(
    tmp_path_factory: pytest.TempPathFactory, mnist_path: Path
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One epoch of the default CNN on 3,000 real images and a few scene digits and non-digits, exported by the real
    command."""
    output = tmp_path_factory.mktemp("models") / "mnist"
    result = run_cli(
        *("--data-dir", str(mnist_path), "--output", str(output), "--epochs", "1", "--train-limit", "3000"),
        *("--seed", "7", "--scene-digits", "60", "--non-digits", "60"),
    )
    assert result.returncode == 0, result.stderr
    return output, result


def test_short_run_exports_version_1_with_summary(short_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    output, result = short_run
    assert sorted(p.name for p in output.iterdir()) == ["1"]  # no staging folder left behind
    assert "test set     accuracy" in result.stdout and f"{output}/1/" in result.stdout


def test_fresh_process_loads_the_export(short_run: tuple[Path, subprocess.CompletedProcess[str]], mnist: Mnist) -> None:
    """A new process that knows only the signature gets probabilities, and the accuracy metrics.json claims."""
    output, _ = short_run
    np.save(output / "test.npy", mnist.test_images.astype(np.float32))
    script = textwrap.dedent(f"""
        import json, numpy as np, tensorflow as tf
        serve = tf.saved_model.load({str(output / "1")!r}).signatures["serving_default"]
        out = serve(images=tf.constant(np.load({str(output / "test.npy")!r})))
        probabilities = out["probabilities"].numpy()
        score = out["digit_score"].numpy()
        print(json.dumps({{"keys": sorted(out), "first": probabilities[:32].tolist(),
                          "score_shape": list(score.shape), "score_range": [float(score.min()), float(score.max())],
                          "shape": list(probabilities.shape), "classes": probabilities.argmax(1).tolist()}}))
    """)
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    outputs = json.loads(result.stdout)
    assert outputs["keys"] == ["digit_score", "probabilities"] and outputs["shape"] == [10000, 10]
    assert outputs["score_shape"] == [10000] and 0 <= outputs["score_range"][0] <= outputs["score_range"][1] <= 1
    np.testing.assert_allclose(np.array(outputs["first"]).sum(axis=1), 1.0, atol=1e-5)
    claimed = json.loads((output / "1" / "metrics.json").read_text())["test_accuracy"]
    measured = (np.array(outputs["classes"]) == mnist.test_labels).mean()
    assert abs(measured - claimed) <= 0.0002  # the export is the very model that was evaluated


def test_report_files_are_valid(short_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    version = short_run[0] / "1"
    metrics = json.loads((version / "metrics.json").read_text())
    for key in (
        "test_loss",
        "test_accuracy",
        "per_class",
        "confusion_matrix",
        "epochs",
        "training_seconds",
        "parameters",
        "seed",
        "data_checksums_sha256",
        "versions",
    ):
        assert key in metrics, key
    assert np.array(metrics["confusion_matrix"]).sum() == 10000
    assert set(metrics["per_class"]) == {str(d) for d in range(10)}
    assert metrics["seed"] == 7 and metrics["epochs"] == 1 and len(metrics["data_checksums_sha256"]) == 4
    assert metrics["config"]["non_digits"] == 60 and 0 <= metrics["digit_score"]["test_digits_flagged"] <= 1
    assert metrics["config"]["label_smoothing"] == 0.1 and metrics["temperature"] > 0
    assert {"tensorflow", "keras"} <= set(metrics["versions"])
    for name in REPORT_PICTURES:
        with Image.open(version / name) as picture:
            assert picture.format == "PNG" and picture.width > 100


def test_evaluate_command_remeasures(
    short_run: tuple[Path, subprocess.CompletedProcess[str]], mnist_path: Path
) -> None:
    version = short_run[0] / "1"
    claimed = json.loads((version / "metrics.json").read_text())["test_accuracy"]
    result = run_cli("evaluate", str(version), "--data-dir", str(mnist_path))
    assert result.returncode == 0, result.stderr
    assert f"test accuracy {claimed:.4%}" in result.stdout


def test_same_seed_same_accuracy(tmp_path: Path, mnist_path: Path) -> None:
    """Two identical short MLP runs agree on test accuracy to 0.1 percentage point (in fact exactly)."""
    from training.train import TrainConfig, train

    config = TrainConfig(
        arch="mlp",
        data_dir=mnist_path,
        output=tmp_path,
        epochs=1,
        train_limit=2000,
        seed=3,
        learning_rate=1e-3,
        augment=False,
    )
    first, second = train(config), train(config)
    assert first.version_dir.name == "1" and second.version_dir.name == "2"  # never overwritten
    assert abs(first.metrics["test_accuracy"] - second.metrics["test_accuracy"]) <= 0.001


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "train-labels-idx1-ubyte.gz").unlink(), "train-labels-idx1-ubyte.gz: file not found"),
        (
            lambda d: (d / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x00\x00\x08\x01" + b"\x00" * 8),
            "t10k-images-idx3-ubyte.gz: magic number 0x00000801, expected 0x00000803",
        ),
    ],
    ids=["missing", "wrong-magic"],
)
def test_bad_data_stops_with_one_line(tmp_path: Path, mnist_path: Path, damage, message: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for source in mnist_path.glob("*.gz"):
        shutil.copyfile(source, data / source.name)  # copies, never links: damage() must not reach the shared data
        (data / source.name).chmod(0o644)
    damage(data)
    result = run_cli("--data-dir", str(data), "--output", str(tmp_path / "out"), "--epochs", "1")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # found before TensorFlow's start-up logs could come first
    last_line = lines[0]
    assert last_line.startswith(f"error: {data / message.split(':')[0]}:{message.split(':', 1)[1]}"), last_line
    assert not (tmp_path / "out" / "1").exists()


def test_unwritable_output_is_refused_before_training(tmp_path: Path, mnist_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the output folder should be")
    result = run_cli("--data-dir", str(mnist_path), "--output", str(blocker / "mnist"))
    assert result.returncode == 2
    assert "output folder is not writable" in result.stderr and "Epoch" not in result.stdout
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_existing_versions_are_never_overwritten(tmp_path: Path) -> None:
    import keras

    from training.export import export_version

    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "keep.txt").write_text("precious")
    (tmp_path / "3").mkdir()
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10, "softmax")])
    written = export_version(model, tmp_path, lambda folder: (folder / "metrics.json").write_text("{}"))
    assert written == tmp_path / "4" and (written / "saved_model.pb").is_file()
    assert (tmp_path / "1" / "keep.txt").read_text() == "precious"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_exported_network_is_rewritten_and_computes_the_same(mnist: Mnist) -> None:
    import keras

    from training.folding import PhaseMax, inference_model
    from training.model import build_cnn

    model = build_cnn()
    rng = np.random.default_rng(3)
    for layer in model.layers:  # statistics as training leaves them: nothing like the fresh 0/1
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.gamma.shape[0]
            layer.set_weights(
                [
                    rng.uniform(-2, 2, channels),
                    rng.normal(0, 1, channels),
                    rng.normal(0, 3, channels),
                    rng.uniform(0.1, 9, channels),
                ]
            )
    images = mnist.test_images[:64].astype(np.float32)
    folded = inference_model(model)
    kinds = [type(layer).__name__ for layer in folded.layers]
    assert {"BatchNormalization", "Dropout", "Rescaling", "Reshape", "Flatten"}.isdisjoint(kinds)
    # Four normalisations folded, one dropout left out, the scaling folded into the first kernel; the two reshapes
    # (the input's, and the head's flatten) with fixed shapes.
    assert len(folded.layers) == len(model.layers) - 6 and kinds.count("FixedReshape") == 2
    # The first block (32 filters on the one-channel image) by pooling phases; the later poolings (after the second
    # block, and into the head's quadrants) as trained.
    first, relu, phase_max = folded.layers[1:4]
    assert first.kernel.shape == (4, 4, 1, 4 * 32) and first.strides == (2, 2)
    assert isinstance(relu, keras.layers.ReLU) and isinstance(phase_max, PhaseMax)
    assert [type(layer).__name__ for layer in folded.layers].count("MaxPooling2D") == 2
    expected = np.asarray(model(images, training=False))
    np.testing.assert_allclose(np.asarray(folded(images)), expected, atol=2e-5)
    assert expected.argmax(axis=1).tolist() == np.asarray(folded(images)).argmax(axis=1).tolist()


def test_the_tutorial_networks_scaling_moves_into_a_copy_of_its_first_dense_layer(mnist: Mnist) -> None:
    from training.folding import FixedReshape, inference_model
    from training.model import build_mlp

    model = build_mlp()
    images = mnist.test_images[:64].astype(np.float32)
    expected = np.asarray(model(images, training=False))
    folded = inference_model(model)
    assert [type(layer).__name__ for layer in folded.layers] == ["FixedReshape", "Dense", "Dense"]
    assert isinstance(folded.layers[0], FixedReshape) and folded.layers[0].target_shape == (28 * 28,)
    np.testing.assert_allclose(np.asarray(folded(images)), expected, atol=1e-6)
    # The trained model's own layers keep their weights: the export may run again, or the report read them after.
    np.testing.assert_array_equal(np.asarray(model(images, training=False)), expected)


def test_no_network_and_no_data_dir_says_how(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MNIST_DATA_DIR"}
    env.update(
        HOME=str(tmp_path),
        KERAS_HOME=str(tmp_path / ".keras"),
        TF_CPP_MIN_LOG_LEVEL="2",
        HTTPS_PROXY="http://127.0.0.1:9",
        HTTP_PROXY="http://127.0.0.1:9",
    )  # a closed port: no download
    result = subprocess.run(
        [sys.executable, "-m", "training", "--output", str(tmp_path / "out")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 2
    assert "could not download MNIST" in result.stderr and "--data-dir" in result.stderr


def test_help_lists_the_commands_and_options_default_to_train() -> None:
    overview = run_cli("--help")
    assert overview.returncode == 0, overview.stderr
    assert all(command in overview.stdout for command in ("train", "evaluate"))
    train_help = run_cli("train", "--help")
    assert train_help.returncode == 0 and "--epochs" in train_help.stdout
    misspelt = run_cli("--epochs", "three")  # options alone go to `train`, whose parser names the bad value
    assert misspelt.returncode == 2 and "invalid int value: 'three'" in misspelt.stderr


def test_sample_counts_are_checked_before_training(tmp_path: Path) -> None:
    negative = run_cli("--non-digits", "-5", "--output", str(tmp_path))
    assert negative.returncode == 2 and "--non-digits" in negative.stderr
    tutorial = run_cli("--arch", "mlp", "--non-digits", "10", "--output", str(tmp_path))
    assert tutorial.returncode == 2 and "needs --arch cnn" in tutorial.stderr
    whole = run_cli("--label-smoothing", "1", "--output", str(tmp_path))
    assert whole.returncode == 2 and "--label-smoothing" in whole.stderr
    smoothed_tutorial = run_cli("--arch", "mlp", "--label-smoothing", "0.1", "--output", str(tmp_path))
    assert smoothed_tutorial.returncode == 2 and "needs --arch cnn" in smoothed_tutorial.stderr
    assert not any(tmp_path.iterdir())  # nothing trained, nothing written


def test_training_targets_smooth_the_digits_and_keep_a_non_digit_certain() -> None:
    from training.train import training_targets

    targets = training_targets(np.array([3, 10, 0]), 11, 0.1)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(targets[0, 3], 0.91, rtol=1e-6)
    np.testing.assert_allclose(targets[0, [0, 1, 2, 4, 5, 6, 7, 8, 9]], 0.01, rtol=1e-6)
    assert targets[0, 10] == 0 and targets[2, 10] == 0
    np.testing.assert_array_equal(targets[1], np.eye(11)[10])
    np.testing.assert_array_equal(training_targets(np.array([3, 10]), 11, 0.0), np.eye(11)[[3, 10]])


def test_temperature_is_fitted_to_the_answers_likelihood() -> None:
    """Labels drawn from softmax(logits / 2.5) are most likely under a temperature near 2.5; the fit ignores the
    "none of these" column."""
    from training.calibration import fit_temperature

    rng = np.random.default_rng(11)
    logits = rng.normal(0, 6, (20_000, 11)).astype(np.float32)
    scaled = np.exp(logits[:, :10] / 2.5)
    labels = np.array([rng.choice(10, p=row / row.sum()) for row in scaled])
    assert abs(fit_temperature(logits, labels) - 2.5) < 0.15
    assert fit_temperature(logits[:0], labels[:0]) == 1.0


def test_digit_outputs_are_the_calibrated_digits_and_the_digits_share() -> None:
    """Against float64 arithmetic: the probabilities are the softmax of the digits' logits over the temperature, and
    the digit score is the digits' share of the softmax over every class, exact in relative terms even where the
    "none of these" class takes all but a few parts in 10^12 (1 - P(none) would round to 0 there)."""
    from training.model import digit_outputs

    rng = np.random.default_rng(5)
    logits = rng.normal(0, 4, (6, 11))
    logits[1, 10] = logits[1, :10].max() + 30  # certainly not a digit
    logits[2, 10] = logits[2, :10].min() - 30  # certainly a digit
    outputs = {name: np.asarray(value) for name, value in digit_outputs(logits.astype(np.float32), 0.5).items()}
    scaled = np.exp(logits[:, :10] / 0.5 - (logits[:, :10] / 0.5).max(axis=1, keepdims=True))
    np.testing.assert_allclose(outputs["probabilities"], scaled / scaled.sum(axis=1, keepdims=True), rtol=1e-5)
    every = np.exp(logits - logits.max(axis=1, keepdims=True))
    share = every[:, :10].sum(axis=1) / every.sum(axis=1)
    np.testing.assert_allclose(outputs["digit_score"], share, rtol=1e-5)
    assert 0 < outputs["digit_score"][1] < 1e-12 and outputs["digit_score"][2] == pytest.approx(1.0)


def test_digit_score_never_passes_1() -> None:
    """Where "none of these" is far below the digits, the digits' shares sum to 1 give or take the rounding; the
    score stays within [0, 1], which the service's answer model and clients rely on."""
    from training.model import digit_outputs

    logits = np.random.default_rng(8).normal(0, 3, (20_000, 11)).astype(np.float32)
    logits[:, 10] = -40
    score = np.asarray(digit_outputs(logits)["digit_score"])
    assert score.max() == 1.0 and score.min() > 0.999


def test_scene_samples_are_preprocessed_uploads(mnist: Mnist) -> None:
    """Real MNIST training digits drawn into scenes and generated non-digits, read back as the service reads uploads:
    28x28 images in the MNIST convention, the digits keeping their labels, the rest labelled "none", reproducible."""
    from training.scene_samples import NONE_CLASS, scene_samples

    images, labels = mnist.train_images[:200], mnist.train_labels[:200]
    samples, sample_labels = scene_samples(images, labels, 24, 24, seed=5)
    again, _ = scene_samples(images, labels, 24, 24, seed=5)
    assert samples.shape == (48, 28, 28) and samples.dtype == np.uint8
    np.testing.assert_array_equal(samples, again)
    assert (sample_labels[24:] == NONE_CLASS).all() and set(sample_labels[:24]) <= set(labels.tolist())
    digits = samples[:24].astype(np.float64)
    assert (digits.max(axis=(1, 2)) == 255).mean() > 0.9  # nearly every digit is found and scaled to full ink
    border = np.concatenate([digits[:, :3].ravel(), digits[:, -3:].ravel()])
    assert border.mean() < 10  # dark background, ink centred in the box, as MNIST has it


def test_scene_samples_are_read_without_the_served_blur(mnist: Mnist) -> None:
    """A network trained on blurred scene samples tells far fewer non-digits (docs/training.md)."""
    from app.imaging import preprocess
    from training.scene_samples import NONE_CLASS, render, upload

    digits = [(n, mnist.train_images[n], int(mnist.train_labels[n])) for n in range(2)]
    for task in [*digits, (2, None, NONE_CLASS), (3, None, NONE_CLASS)]:
        data = upload(5, task)
        sample = render(5, task)
        np.testing.assert_array_equal(sample, preprocess(data, softened=False))
        if sample.any():
            assert not np.array_equal(sample, preprocess(data))


def test_small_originals_are_a_few_pixels_in_few_grey_levels(mnist: Mnist) -> None:
    """A training digit stored small, as other sources keep theirs: its longer side 8-16 pixels, 17 grey levels,
    still the digit (the service reads it back, enlarged and scanned, as the same digit's shape); an empty page stays
    empty."""
    from app.imaging import preprocess
    from evalsets.inks import mnist_digit
    from training.scene_samples import small_original, small_original_scan

    for number, digit in enumerate(mnist.train_images[:50]):
        small = small_original(mnist_digit(digit), np.random.default_rng(number))
        assert 8 <= max(small.shape) <= 16 and min(small.shape) >= 1
        np.testing.assert_array_equal(np.round(small * 16), small * 16)
        assert small.max() > 0.5  # the strokes survive the shrinking
    blank = small_original(np.zeros((28, 28), np.float32), np.random.default_rng(0))
    assert blank.shape == (28, 28) and not blank.any()
    data, _ = small_original_scan(mnist_digit(mnist.train_images[0]), np.random.default_rng(3))
    assert preprocess(data).max() == 255  # found and scaled to full ink, as an upload is


def test_upright_ones_get_a_flag_from_the_top_and_slanted_ones_stay_bare(mnist: Mnist) -> None:
    """The flag is ink added above the stem's middle, left of its top, nothing of the 1 is lost, and the foot (when
    drawn) is ink added at the stem's bottom; a slanted 1 and an empty page are left as they are."""
    from evalsets.inks import mnist_digit
    from training.scene_samples import flagged_one

    ones = [mnist_digit(image) for image in mnist.train_images[mnist.train_labels == 1][:200]]
    slopes = [abs(np.polyfit(*np.nonzero(ink > 0.3), 1)[0]) for ink in ones]  # columns moved per row: 1 at 45 degrees
    upright = [ink for ink, slope in zip(ones, slopes, strict=True) if slope < 0.1]
    slanted = [ink for ink, slope in zip(ones, slopes, strict=True) if slope > 0.6]
    assert len(upright) >= 20 and len(slanted) >= 5
    leftwards = 0
    for number, ink in enumerate(upright):
        flagged = flagged_one(ink, np.random.default_rng(number))
        assert (flagged >= ink).all()
        rows, cols = np.nonzero(ink > 0.3)
        added_rows, added_cols = np.nonzero((flagged - ink) > 0.3)
        upper = added_rows < rows.mean()
        assert upper.sum() >= 2, number  # a flag, not nothing
        assert (added_rows[~upper] >= rows.max() - 4).all(), number  # anything else is the foot
        leftwards += added_cols[upper].mean() < cols[rows == rows.min()].mean()
    assert leftwards >= 0.8 * len(upright)  # the rest are thick strokes that hide much of their flag
    for number, ink in enumerate(slanted):
        np.testing.assert_array_equal(flagged_one(ink, np.random.default_rng(number)), ink)
    empty = np.zeros((28, 28), np.float32)
    np.testing.assert_array_equal(flagged_one(empty, np.random.default_rng(0)), empty)
