"""Exact streaming mAP for `model.fit` / `model.evaluate` (docs/concepts.md)."""

from __future__ import annotations

import numbers

import keras
import tensorflow as tf

from csra_tf.errors import UserError

try:  # Private, but the only way to see that we are being traced for XLA.
    from tensorflow.python.ops.control_flow_util import (
        GraphOrParentsInXlaContext as _graph_in_xla_context,
    )
except ImportError:  # pragma: no cover - depends on the TF version.
    _graph_in_xla_context = None


def _in_xla_context() -> bool:
    """Whether the op being built will be compiled by XLA."""
    if _graph_in_xla_context is None or tf.executing_eagerly():
        return False
    return bool(_graph_in_xla_context(tf.compat.v1.get_default_graph()))


def _is_positive_int(value) -> bool:
    """Whether `value` is an integer (not a bool) of at least 1."""
    return (
        isinstance(value, numbers.Integral)
        and not isinstance(value, bool)
        and value >= 1
    )


def _components(variable: tf.Variable) -> list:
    """The copies of a variable that the current context should touch.

    Inside `strategy.run` (or without any strategy) that is the variable itself,
    which resolves to the replica's own copy. Elsewhere a distributed variable
    gives its per-replica components.
    """
    if not isinstance(variable, tf.distribute.DistributedValues):
        return [variable]
    if tf.distribute.has_strategy() and tf.distribute.in_cross_replica_context():
        strategy = tf.distribute.get_strategy()
    elif tf.distribute.has_strategy():
        return [variable]
    else:
        strategy = variable.distribute_strategy
    return list(strategy.experimental_local_results(variable))


def _local_values(variable: tf.Variable) -> list[tf.Tensor]:
    """Reads a variable; in a cross-replica context, one tensor per replica."""
    return [tf.convert_to_tensor(v) for v in _components(variable)]


def _writable(variable: tf.Variable) -> tf.Variable:
    """The variable to update: in a cross-replica context, the first replica's.

    Inside `strategy.run` each replica updates its own copy. Outside it (a
    direct call, or Keras's symbolic build under a strategy) the batch goes to
    the first replica only, so that `result()` sees it exactly once.
    """
    return _components(variable)[0]


def _mean_average_precision(scores: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """mAP of score/target matrices with TF ops (graph and XLA friendly).

    Same definition as `csra_tf.metrics.evaluate`: per class, the mean over its
    positives of the precision at the positive's rank among the valid examples
    (target not `-1`), tied scores forming one threshold; mAP is the mean over
    classes with at least one positive.

    Args:
        scores: `(N, C)` finite float scores.
        targets: `(N, C)` float targets in {-1, 0, 1}.

    Returns:
        A float64 scalar; 0 when no class has a positive.
    """
    scores = tf.transpose(tf.cast(scores, tf.float32))
    targets = tf.transpose(tf.cast(targets, tf.float32))
    valid = targets >= 0.0
    positive = targets > 0.5
    lowest = tf.constant(-float("inf"), tf.float32)
    # For every example: how many valid (resp. positive) examples of its class
    # score at least as high. Padding with -inf keeps the others out.
    valid_sorted = tf.sort(tf.where(valid, scores, lowest), axis=-1)
    positive_sorted = tf.sort(tf.where(positive, scores, lowest), axis=-1)
    num = tf.shape(scores, out_type=tf.int32)[-1]
    n_valid_ge = num - tf.searchsorted(valid_sorted, scores, side="left")
    n_positive_ge = num - tf.searchsorted(positive_sorted, scores, side="left")
    precision = tf.math.divide_no_nan(
        tf.cast(n_positive_ge, tf.float64), tf.cast(n_valid_ge, tf.float64)
    )
    precision = tf.where(positive, precision, tf.zeros_like(precision))
    num_positive = tf.reduce_sum(tf.cast(positive, tf.float64), axis=-1)
    ap = tf.math.divide_no_nan(tf.reduce_sum(precision, axis=-1), num_positive)
    has_positive = tf.cast(num_positive > 0, tf.float64)
    return tf.math.divide_no_nan(
        tf.reduce_sum(ap * has_positive), tf.reduce_sum(has_positive)
    )


@keras.saving.register_keras_serializable(package="csra_tf")
class MeanAveragePrecision(keras.metrics.Metric):
    """Exact mAP over everything seen since the last reset.

    Keeps every score and target of the epoch (no histogram approximation), so
    at the end of `model.evaluate` or of a validation pass in `model.fit` the
    value equals `csra_tf.metrics.evaluate(probs, targets)["mAP"]` on the same
    data, where `probs` are the model's float32 probabilities (the metric takes
    the sigmoid in float64 and ranks it rounded to float32, so it sees the same
    ties, e.g. saturated sigmoids, as `evaluate` on such probabilities).
    Targets use the `1 / 0 / -1` encoding; `-1` entries are ignored.
    `sample_weight`, if given, only masks: entries with weight 0 are treated as
    unknown, other weights do not change AP.

    Storage. With `capacity=None` the buffers grow with every batch. XLA cannot
    compile variables whose shape changes, so under `jit_compile=True` (the
    Keras default on GPU) pass `capacity`: fixed buffers of that many examples
    are kept instead, and the result is NaN once more than `capacity` examples
    were seen since the last reset. In `fit` the same metric object measures the
    training data too, so `capacity` must cover the larger of the two sets.

    Cost. Keras asks for `result()` after every step, which sorts everything
    collected so far: about O(n log n) per step for n examples times classes.

    Distribution. Under `tf.distribute.MirroredStrategy` every replica keeps its
    own examples; `result()` in a cross-replica context (end of epoch, eager
    calls) uses all of them. Across several workers only the local ones are
    used.

    Args:
        num_classes: Number of classes C (last dimension of targets and scores).
        from_logits: Whether `y_pred` are logits (a sigmoid is applied)
            rather than probabilities.
        capacity: `None` for growing buffers, or the maximum number of examples
            between resets (needed with XLA).
        name: Name of the metric.
        dtype: Dtype of the result.

    Example:

    >>> metric = MeanAveragePrecision(num_classes=2)
    >>> metric.update_state([[1.0, 0.0], [0.0, -1.0]], [[2.0, -1.0], [-3.0, 4.0]])
    >>> float(metric.result())
    1.0
    """

    def __init__(
        self,
        num_classes: int,
        from_logits: bool = True,
        capacity: int | None = None,
        name: str = "mAP",
        dtype=None,
    ):
        if not _is_positive_int(num_classes):
            raise UserError(
                "`num_classes` must be a positive int. "
                f"Received: num_classes={num_classes!r}"
            )
        if capacity is not None and not _is_positive_int(capacity):
            raise UserError(
                "`capacity` must be None or a positive int. "
                f"Received: capacity={capacity!r}"
            )
        super().__init__(name=name, dtype=dtype)
        self.num_classes = int(num_classes)
        self.from_logits = bool(from_logits)
        self.capacity = None if capacity is None else int(capacity)

        variable_args = dict(
            trainable=False,
            synchronization=tf.VariableSynchronization.ON_READ,
            aggregation=tf.VariableAggregation.NONE,
        )
        with tf.name_scope(self.name.replace("/", ">")):
            if self.capacity is None:
                shape = tf.TensorShape([None, self.num_classes])
                self._scores = tf.Variable(
                    self._empty(0, 0.0), shape=shape, name="scores", **variable_args
                )
                self._targets = tf.Variable(
                    self._empty(0, -1.0), shape=shape, name="targets", **variable_args
                )
                self._count = None
            else:
                # One extra row receives the examples past `capacity`.
                self._scores = tf.Variable(
                    self._empty(self.capacity + 1, 0.0), name="scores", **variable_args
                )
                self._targets = tf.Variable(
                    self._empty(self.capacity + 1, -1.0),
                    name="targets",
                    **variable_args,
                )
                self._count = tf.Variable(
                    tf.constant(0, tf.int64), name="count", **variable_args
                )

    def _empty(self, rows: int, value: float) -> tf.Tensor:
        """A `(rows, num_classes)` float32 tensor filled with `value`."""
        return tf.fill([rows, self.num_classes], tf.constant(value, tf.float32))

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Adds a batch of targets and predictions.

        Args:
            y_true: `(B, C)` targets, `1` present, `0` absent, `-1` unknown.
            y_pred: `(B, C)` logits (or probabilities if `from_logits=False`).
            sample_weight: Optional weights broadcastable to `(B, C)`; entries
                with weight 0 are treated as unknown.
        """
        scores = tf.convert_to_tensor(y_pred)
        targets = tf.convert_to_tensor(y_true)
        for arg, value in (("y_pred", scores), ("y_true", targets)):
            last = value.shape.as_list() if value.shape.rank else None
            if last and last[-1] is not None and last[-1] != self.num_classes:
                raise UserError(
                    f"`{arg}` must have num_classes={self.num_classes} entries in "
                    f"its last dimension. Received: {arg}.shape={tuple(last)}"
                )
        if self.from_logits:
            # Sigmoid in float64, rounded once to float32: the probabilities
            # that `predict_probabilities` hands to `evaluate`, ties included.
            scores = tf.math.sigmoid(tf.cast(scores, tf.float64))
        scores = tf.reshape(tf.cast(scores, tf.float32), [-1, self.num_classes])
        targets = tf.reshape(tf.cast(targets, tf.float32), [-1, self.num_classes])
        if sample_weight is not None:
            weight = tf.cast(tf.convert_to_tensor(sample_weight), tf.float32)
            if weight.shape.rank == 1:
                weight = weight[:, None]
            weight = tf.broadcast_to(weight, tf.shape(targets))
            targets = tf.where(weight == 0.0, -tf.ones_like(targets), targets)

        if self.capacity is None:
            if _in_xla_context():
                raise UserError(
                    "MeanAveragePrecision(capacity=None) keeps buffers that grow "
                    "with every batch, which XLA cannot compile. Compile the model "
                    "with `jit_compile=False` or give the metric a `capacity` of at "
                    "least the number of examples per epoch. Received: capacity=None"
                )
            for variable, values in ((self._scores, scores), (self._targets, targets)):
                variable = _writable(variable)
                variable.assign(tf.concat([variable.read_value(), values], axis=0))
            return
        count = _writable(self._count)
        batch = tf.shape(scores, out_type=tf.int64)[0]
        rows = count.read_value() + tf.range(batch, dtype=tf.int64)
        rows = tf.minimum(rows, self.capacity)[:, None]
        for variable, values in ((self._scores, scores), (self._targets, targets)):
            variable = _writable(variable)
            variable.assign(
                tf.tensor_scatter_nd_update(variable.read_value(), rows, values)
            )
        count.assign_add(batch)

    def result(self):
        """Returns the mAP of everything seen since the last reset.

        Returns:
            A scalar of the metric's dtype: the mAP, 0 before any positive was
            seen, NaN if more than `capacity` examples were seen.
        """
        scores = _local_values(self._scores)
        targets = _local_values(self._targets)
        overflow = tf.constant(False)
        if self.capacity is not None:
            scores = [s[: self.capacity] for s in scores]
            targets = [t[: self.capacity] for t in targets]
            for count in _local_values(self._count):
                overflow = tf.logical_or(overflow, count > self.capacity)
        value = _mean_average_precision(
            tf.concat(scores, axis=0), tf.concat(targets, axis=0)
        )
        value = tf.where(overflow, tf.constant(float("nan"), tf.float64), value)
        return tf.cast(value, self.dtype)

    def reset_state(self):
        """Forgets every example seen so far."""
        rows = 0 if self.capacity is None else self.capacity + 1
        for variable in _components(self._scores):
            variable.assign(self._empty(rows, 0.0))
        for variable in _components(self._targets):
            variable.assign(self._empty(rows, -1.0))
        if self._count is not None:
            for variable in _components(self._count):
                variable.assign(tf.constant(0, tf.int64))

    def get_config(self) -> dict:
        """Returns the constructor arguments.

        Returns:
            A dict that `from_config` turns back into an equal metric.
        """
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "from_logits": self.from_logits,
                "capacity": self.capacity,
            }
        )
        return config
