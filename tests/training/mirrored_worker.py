"""Run by test_strategy.py in a fresh process: 2 logical CPUs vs one device."""

import json
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from csra_tf.metrics import MeanAveragePrecision, evaluate  # noqa: E402
from csra_tf.models import build_classifier  # noqa: E402
from csra_tf.optimization import MaskedBinaryCrossentropy, MultiRateSGD  # noqa: E402
from csra_tf.training.strategy import create_strategy  # noqa: E402

rng = np.random.default_rng(0)
images = rng.uniform(0, 255, (16, 32, 32, 3)).astype("float32")
targets = rng.integers(-1, 2, (16, 5)).astype("float32")
targets[:, 0] = 1.0  # every class needs a positive for mAP
targets[0] = 0.0
keras.utils.set_random_seed(0)
initial = build_classifier("tiny", 5, num_heads=2, lam=0.5, image_size=32).get_weights()


def train_one_epoch(strategy, global_batch):
    with strategy.scope():
        model = build_classifier("tiny", 5, num_heads=2, lam=0.5, image_size=32)
        model.set_weights(initial)
        model.compile(
            MultiRateSGD(0.05, lr_multipliers={"head": 10.0}),
            MaskedBinaryCrossentropy(),
            metrics=[MeanAveragePrecision(5)],
        )
    data = tf.data.Dataset.from_tensor_slices((images, targets)).batch(global_batch)
    history = model.fit(data, epochs=1, verbose=0)
    probs = 1 / (1 + np.exp(-model.predict(images, verbose=0)))
    return model.get_weights(), history.history, probs


single = train_one_epoch(create_strategy(["/cpu:0"]), global_batch=8)
mirrored = train_one_epoch(create_strategy(["/cpu:0", "/cpu:1"]), global_batch=8)
print(
    json.dumps(
        {
            "num_replicas": 2,
            "max_weight_diff": max(
                float(np.max(np.abs(a - b)))
                for a, b in zip(single[0], mirrored[0], strict=True)
            ),
            # Per weight: the runs' difference over the single run's own update,
            # the scale at which a wrong synchronisation would show (a weight
            # that did not move must not differ at all).
            "max_diff_per_update": max(
                float(np.max(np.abs(a - b)) / max(np.max(np.abs(a - w0)), 1e-30))
                for a, b, w0 in zip(single[0], mirrored[0], initial, strict=True)
            ),
            "loss": [single[1]["loss"][-1], mirrored[1]["loss"][-1]],
            "fit_mAP": [single[1]["mAP"][-1], mirrored[1]["mAP"][-1]],
            "eval_mAP": [
                evaluate(single[2], targets)["mAP"],
                evaluate(mirrored[2], targets)["mAP"],
            ],
        }
    )
)
sys.exit(0)
