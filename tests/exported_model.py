"""Shared fixtures of the export and inference tests: a tiny CSRA model, labelled
full export (every variant) made once per session."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from csra_tf.data import Source
from csra_tf.export import export_model
from csra_tf.models import build_classifier

IMAGE_SIZE = 32
CLASS_NAMES = ["cat", "dog", "car", "tree"]
# Loose budgets: the fixture model is untrained, so its quantised mAP is noisy;
# the gate itself is tested with impossible budgets.
LOOSE_BUDGETS = {"float16": 5.0, "dynamic_int8": 20.0, "int8": 20.0}


def smooth_images(rng, num, height, width):
    """Random images with some spatial structure (blurred noise), uint8."""
    small = rng.uniform(0, 255, (num, max(height // 4, 1), max(width // 4, 1), 3))
    images = tf.image.resize(small, (height, width), method="bilinear").numpy()
    noise = rng.normal(0, 12, images.shape)
    return np.clip(images + noise, 0, 255).astype(np.uint8)


def make_source(images, targets):
    dataset = tf.data.Dataset.from_tensor_slices(
        (tf.constant(images), tf.constant(targets, tf.float32))
    )
    return Source(
        dataset=dataset, class_names=list(CLASS_NAMES), num_examples=len(images)
    )


def probabilities(model, images):
    return keras.ops.convert_to_numpy(
        keras.ops.sigmoid(model.predict_on_batch(np.asarray(images, np.float32)))
    )


def labelled_images(rng, num, height=IMAGE_SIZE, width=IMAGE_SIZE):
    """Images whose class `c` is present when colour channel `c % 3` of quadrant
    `c` is brighter than that of the median image."""
    images = smooth_images(rng, num, height, width)
    h, w = height // 2, width // 2
    quadrants = [
        images[:, :h, :w],
        images[:, :h, w:],
        images[:, h:, :w],
        images[:, h:, w:],
    ]
    means = np.stack([quadrants[c][..., c % 3].mean((1, 2)) for c in range(4)], 1)
    return images, (means > np.median(means, axis=0)).astype(np.float32)


@pytest.fixture(scope="session")
def model():
    """A tiny CSRA model fitted for a few seconds, so that its probabilities
    spread (an untrained one's all lie within 0.002 of 0.5)."""
    keras.utils.set_random_seed(0)
    model = build_classifier(
        "tiny", num_classes=len(CLASS_NAMES), image_size=IMAGE_SIZE, lam=0.5
    )
    images, targets = labelled_images(np.random.default_rng(10), 96)
    model.compile(
        keras.optimizers.Adam(3e-3), keras.losses.BinaryCrossentropy(from_logits=True)
    )
    model.fit(images.astype(np.float32), targets, batch_size=16, epochs=6, verbose=0)
    return model


@pytest.fixture(scope="session")
def sources():
    """(eval, calibration) sources of labelled images, with a few unknowns."""
    rng = np.random.default_rng(0)
    eval_images, targets = labelled_images(rng, 48)
    targets[rng.uniform(size=targets.shape) < 0.05] = -1.0
    calibration_images, calibration_targets = labelled_images(rng, 24, 40, 36)
    return (
        make_source(eval_images, targets),
        make_source(calibration_images, calibration_targets),
    )


@pytest.fixture(scope="session")
def exported(model, sources, tmp_path_factory):
    """One export of every variant: (export_dir, report)."""
    export_dir = tmp_path_factory.mktemp("export")
    eval_source, calibration_source = sources
    report = export_model(
        model,
        export_dir,
        eval_source,
        calibration_source,
        map_budgets=LOOSE_BUDGETS,
        num_calibration_images=24,
        batch_size=16,
        latency_runs=5,
        progress=False,
    )
    return export_dir, report


@pytest.fixture(scope="session")
def classes_dir(model, tmp_path_factory):
    """A folder with model.keras and classes.json, like a training workdir."""
    folder = tmp_path_factory.mktemp("run")
    model.save(folder / "model.keras")
    (folder / "classes.json").write_text(json.dumps(CLASS_NAMES))
    return folder
