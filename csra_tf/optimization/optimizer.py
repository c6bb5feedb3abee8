"""SGD with per-layer learning-rate multipliers and PyTorch-style weight decay."""

from __future__ import annotations

from collections.abc import Mapping

import keras
import tensorflow as tf

from csra_tf.errors import UserError


@keras.saving.register_keras_serializable(package="csra_tf")
class MultiRateSGD(keras.optimizers.SGD):
    """`torch.optim.SGD` with a learning-rate multiplier per variable.

    The paper trains the classifier head with 10x the backbone's learning rate
    (0.1 vs 0.01). A variable whose path is a key of `lr_multipliers`, or starts
    with `"<key>/"`, uses `learning_rate * lr_multipliers[key]`.

    The update is PyTorch's, as the authors trained: weight decay is coupled
    (`g = grad + weight_decay * w`), the momentum buffer holds gradients,
    `v = momentum * v + g`, and the step is `w -= lr * v` (Nesterov:
    `w -= lr * (g + momentum * v)`). Keras's SGD keeps lr-scaled steps in its
    buffer instead (`v = momentum * v - lr * g`, `w += v`); the two differ
    whenever the learning rate changes (warm-up, decay).

    Args:
        learning_rate: base (backbone) learning rate, a float or a schedule.
        momentum: momentum factor.
        weight_decay: L2 coefficient added to the gradient.
        lr_multipliers: mapping from a variable path, or a path prefix, to its
            multiplier (e.g. the paths of `model.head`'s variables -> 10).
        nesterov: use Nesterov momentum.
        **kwargs: other `keras.optimizers.Optimizer` arguments (`name`,
            `global_clipnorm`, `loss_scale_factor`, ...).

    Example:
    >>> opt = MultiRateSGD(0.01, lr_multipliers={"head": 10.0})
    """

    def __init__(
        self,
        learning_rate=0.01,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        lr_multipliers: Mapping[str, float] | None = None,
        nesterov: bool = False,
        name: str = "multi_rate_sgd",
        **kwargs,
    ):
        kwargs.pop("weight_decay", None)
        super().__init__(
            learning_rate=learning_rate,
            momentum=momentum,
            nesterov=nesterov,
            name=name,
            **kwargs,
        )
        if weight_decay < 0:
            raise UserError(
                f"`weight_decay` must be >= 0. Received: weight_decay={weight_decay}"
            )
        multipliers = dict(lr_multipliers or {})
        for prefix, value in multipliers.items():
            if not value > 0:
                raise UserError(
                    "Learning-rate multipliers must be > 0. "
                    f"Received: lr_multipliers[{prefix!r}]={value}"
                )
        self.l2_weight_decay = float(weight_decay)
        self.lr_multipliers = multipliers

    def build(self, variables):
        super().build(variables)
        self._variable_lr_scales = [self.multiplier(v) for v in variables]

    def multiplier(self, variable) -> float:
        """Learning-rate multiplier of `variable` (1.0 when no prefix matches).

        Args:
            variable: a Keras variable of the model.

        Returns:
            The multiplier as a float.
        """
        path = variable.path
        for prefix, value in self.lr_multipliers.items():
            if path == prefix or path.startswith(prefix + "/"):
                return value
        return 1.0

    def update_step(self, gradient, variable, learning_rate):
        ops = keras.ops
        index = self._get_variable_index(variable)
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        scale = self._variable_lr_scales[index]
        if scale != 1.0:
            learning_rate = learning_rate * ops.cast(scale, variable.dtype)
        accum = None if self.momentum == 0 else self.momentums[index]
        if self.l2_weight_decay and accum is not None and not self.nesterov:
            # momentum * (accum + weight_decay / momentum * w) + grad is
            # momentum * accum + (grad + weight_decay * w): the decay goes into
            # the buffer in one fused pass (accum -= alpha * w) instead of a
            # multiply and an add that each write a full-size temporary.
            tf.raw_ops.ResourceApplyGradientDescent(
                var=accum.handle,
                alpha=ops.cast(-self.l2_weight_decay / self.momentum, variable.dtype),
                delta=ops.convert_to_tensor(variable),
            )
        elif self.l2_weight_decay:
            gradient = gradient + ops.cast(
                self.l2_weight_decay, variable.dtype
            ) * ops.convert_to_tensor(variable)
        if accum is None:
            self.assign_sub(variable, ops.multiply(gradient, learning_rate))
            return
        # TensorFlow's fused kernel is exactly torch.optim.SGD's update:
        # accum = momentum * accum + g; w -= lr * accum (Nesterov:
        # w -= lr * (g + momentum * accum)). One op per variable instead of five.
        tf.raw_ops.ResourceApplyMomentum(
            var=variable.handle,
            accum=accum.handle,
            lr=learning_rate,
            grad=gradient,
            momentum=ops.cast(self.momentum, variable.dtype),
            use_locking=False,
            use_nesterov=self.nesterov,
        )

    def get_config(self):
        config = super().get_config()
        config["weight_decay"] = self.l2_weight_decay
        config["lr_multipliers"] = dict(self.lr_multipliers)
        return config
