"""MultiRateSGD: the head learns exactly 10x faster; PyTorch-style weight decay."""

import keras
import numpy as np
import pytest

from csra_tf.models import build_classifier
from csra_tf.optimization import MultiRateSGD
from tests.keras_harness import run_model_saving_test, run_serialization_test


def _deltas(optimizer, model, steps=1):
    before = [v.numpy().copy() for v in model.trainable_variables]
    grads = [np.ones(v.shape, "float32") for v in model.trainable_variables]
    for _ in range(steps):
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
    return {
        v.path: v.numpy() - b
        for v, b in zip(model.trainable_variables, before, strict=True)
    }


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_head_step_is_exactly_ten_times_backbone_step(momentum):
    model = build_classifier("tiny", num_classes=3, image_size=32)
    opt = MultiRateSGD(
        0.01, momentum=momentum, weight_decay=0.0, lr_multipliers={"head": 10}
    )
    deltas = _deltas(opt, model, steps=3)
    head = [d for p, d in deltas.items() if p.startswith("head/")]
    body = [d for p, d in deltas.items() if not p.startswith("head/")]
    assert len(head) == 1 and len(body) > 5
    step = body[0].flat[0]
    assert step < 0
    for d in body:
        np.testing.assert_allclose(d, step, rtol=1e-5)
    np.testing.assert_allclose(head[0], 10 * step, rtol=1e-5)


def test_coupled_weight_decay_scales_with_head_lr():
    model = build_classifier("tiny", num_classes=3, image_size=32)
    head = model.head.weights[0]
    w0 = head.numpy().copy()
    opt = MultiRateSGD(
        0.01, momentum=0.0, weight_decay=0.1, lr_multipliers={"head": 10}
    )
    deltas = _deltas(opt, model)
    np.testing.assert_allclose(
        deltas[head.path], -0.1 * (1.0 + 0.1 * w0), rtol=1e-4, atol=1e-7
    )


def test_config_round_trip_and_validation():
    init_kwargs = {
        "learning_rate": 0.25,  # a float32 number: the config holds it exactly
        "momentum": 0.8,
        "weight_decay": 1e-4,
        "lr_multipliers": {"head": 10.0},
        "nesterov": True,
    }
    opt = MultiRateSGD(**init_kwargs)
    config = run_serialization_test(opt, init_kwargs)
    clone = MultiRateSGD.from_config(config)
    assert clone.lr_multipliers == {"head": 10.0}
    assert clone.l2_weight_decay == 1e-4
    with pytest.raises(ValueError, match="Received"):
        MultiRateSGD(0.1, lr_multipliers={"head": 0})
    with pytest.raises(ValueError, match="Received"):
        MultiRateSGD(0.1, weight_decay=-1)


def test_compiled_model_with_optimizer_survives_keras_save():
    model = build_classifier("tiny", num_classes=3, image_size=32)
    model.compile(optimizer=MultiRateSGD(0.01, lr_multipliers={"head": 10}), loss="mse")
    model.fit(np.zeros((4, 32, 32, 3)), np.zeros((4, 3)), verbose=0)
    restored = run_model_saving_test(model, np.zeros((2, 32, 32, 3), "float32"))
    assert isinstance(restored.optimizer, MultiRateSGD)
    assert restored.optimizer.lr_multipliers == {"head": 10}


@pytest.mark.parametrize("nesterov", [False, True])
def test_update_is_torch_sgd_with_a_changing_learning_rate(nesterov):
    # torch.optim.SGD (dampening 0), written out in NumPy: g = grad + wd * w;
    # v = mu * v + g (v = g at the first step); w -= lr_t * v
    # (Nesterov: w -= lr_t * (g + mu * v)). The learning rate changes every
    # step, where Keras's own SGD (which keeps lr-scaled steps) would differ.
    rates = [0.1, 0.3, 0.05, 0.2]
    mu, wd = 0.9, 0.01
    # step 0 -> rates[0], step 1 -> rates[1], ... (boundaries are inclusive).
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([0, 1, 2], rates)
    variable = keras.Variable(np.array([1.0, -2.0, 0.5], "float32"), name="w")
    opt = MultiRateSGD(schedule, momentum=mu, weight_decay=wd, nesterov=nesterov)
    rng = np.random.default_rng(0)
    grads = rng.normal(size=(len(rates), 3)).astype("float32")
    w, v = np.array([1.0, -2.0, 0.5]), np.zeros(3)
    for lr, grad in zip(rates, grads, strict=True):
        opt.apply_gradients([(grad, variable)])
        g = grad + wd * w
        v = mu * v + g
        w = w - lr * ((g + mu * v) if nesterov else v)
    np.testing.assert_allclose(variable.numpy(), w, rtol=1e-5, atol=1e-6)
