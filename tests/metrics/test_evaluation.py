"""Tests for `csra_tf.metrics.evaluate` and `average_precision`."""

import warnings

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from csra_tf.metrics import average_precision, evaluate

METRIC_KEYS = ("mAP", "CP", "CR", "CF1", "OP", "OR", "OF1")


def _sklearn_ap(scores, targets):
    """Per-class AP from sklearn on the valid (target != -1) entries."""
    ap = []
    for c in range(scores.shape[1]):
        valid = targets[:, c] != -1
        if not np.any(targets[valid, c] == 1):
            ap.append(np.nan)
            continue
        ap.append(average_precision_score(targets[valid, c], scores[valid, c]))
    return np.array(ap)


def _random_case(seed, n=60, c=6, decimals=1):
    """Probabilities rounded to `decimals` (many ties) and targets with -1."""
    rng = np.random.default_rng(seed)
    probs = np.round(rng.random((n, c)), decimals)
    targets = rng.choice([-1.0, 0.0, 1.0], size=(n, c), p=[0.15, 0.55, 0.3])
    targets[0] = 1.0  # Every class has a positive.
    return probs, targets


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("decimals", [1, 2, 6])
def test_average_precision_matches_sklearn_with_ties_and_unknowns(seed, decimals):
    probs, targets = _random_case(seed, decimals=decimals)
    np.testing.assert_allclose(
        average_precision(probs, targets), _sklearn_ap(probs, targets), atol=1e-12
    )


def test_tied_scores_count_as_one_threshold():
    # Ranks: {0.5: one positive, one negative}, then 0.2: positive.
    # sklearn: 1/2 * precision(0.5) + 1/2 * precision(0.2) = 1/4 + 1/3.
    scores = np.array([[0.5], [0.5], [0.2]])
    targets = np.array([[1.0], [0.0], [1.0]])
    np.testing.assert_allclose(average_precision(scores, targets), [7 / 12])
    np.testing.assert_allclose(average_precision(scores[::-1], targets[::-1]), [7 / 12])
    # All scores tied: AP is the fraction of positives.
    np.testing.assert_allclose(
        average_precision(np.zeros((4, 1)), [[1], [0], [0], [1]]), [0.5]
    )


def test_mean_ap_matches_sklearn_on_random_data():
    probs, targets = _random_case(3, n=200, c=10, decimals=2)
    result = evaluate(probs, targets)
    np.testing.assert_allclose(result["AP"], _sklearn_ap(probs, targets), atol=1e-12)
    assert result["mAP"] == pytest.approx(np.mean(_sklearn_ap(probs, targets)))


def test_hand_computed_small_example():
    probs = np.array(
        [
            [0.9, 0.2, 0.4],
            [0.4, 0.3, 0.5],
            [0.8, 0.6, 0.1],
            [0.3, 0.1, 0.3],
        ]
    )
    targets = np.array(
        [
            [1, 1, 0],
            [0, 0, -1],
            [1, 1, 1],
            [-1, 0, 1],
        ],
        dtype=np.float32,
    )
    # Threshold 0.5; unknown entries (row 3 of class 0, row 1 of class 2, whose
    # 0.5 would otherwise be predicted) are left out.
    # class 0: predicted rows 0, 2       -> tp 2, n_pred 2, n_gt 2
    # class 1: predicted row 2           -> tp 1, n_pred 1, n_gt 2
    # class 2: predicted none            -> tp 0, n_pred 0 (counted 1), n_gt 2
    # CP = (1 + 1 + 0) / 3, CR = (1 + 1/2 + 0) / 3, OP = 3 / 3, OR = 3 / 6.
    # AP: class 0 ranks P P N -> 1; class 1 ranks P N P -> (1 + 2/3) / 2;
    # class 2 ranks N P P -> (1/2 + 2/3) / 2.
    result = evaluate(probs, targets)
    expected = {
        "mAP": (1 + 5 / 6 + 7 / 12) / 3,
        "CP": 2 / 3,
        "CR": 1 / 2,
        "CF1": 4 / 7,
        "OP": 1.0,
        "OR": 1 / 2,
        "OF1": 2 / 3,
    }
    for key, value in expected.items():
        assert result[key] == pytest.approx(value), key
        # With 3 classes top-3 keeps everything.
        assert result[key + "_top3"] == pytest.approx(value), key
    np.testing.assert_allclose(result["AP"], [1, 5 / 6, 7 / 12])


def test_top3_hand_computed():
    probs = np.array(
        [
            [0.9, 0.8, 0.7, 0.6, 0.1],
            [0.2, 0.55, 0.3, 0.9, 0.95],
        ]
    )
    targets = np.array([[1, 0, 0, 1, 0], [0, 1, 1, 1, 1]], dtype=np.float32)
    result = evaluate(probs, targets)
    # All: class (tp, n_pred, n_gt) = 0:(1,1,1) 1:(1,2,1) 2:(0,1,1) 3:(2,2,2) 4:(1,1,1)
    assert result["CP"] == pytest.approx(3.5 / 5)
    assert result["CR"] == pytest.approx(4 / 5)
    assert result["OP"] == pytest.approx(5 / 7)
    assert result["OR"] == pytest.approx(5 / 6)
    # Top 3: row 0 keeps classes 0, 1, 2 and row 1 keeps 1, 3, 4, so class 3
    # loses its row-0 prediction: 3:(1,1,2), the others unchanged.
    assert result["CP_top3"] == pytest.approx(3.5 / 5)
    assert result["CR_top3"] == pytest.approx(3.5 / 5)
    assert result["CF1_top3"] == pytest.approx(3.5 / 5)
    assert result["OP_top3"] == pytest.approx(4 / 6)
    assert result["OR_top3"] == pytest.approx(4 / 6)
    assert result["OF1_top3"] == pytest.approx(4 / 6)


def test_top3_map_matches_sklearn_on_top3_scores():
    probs, targets = _random_case(4, n=80, c=7, decimals=2)
    kept = np.zeros_like(probs)
    for i, row in enumerate(probs):
        top = sorted(range(row.size), key=lambda c: (-row[c], c))[:3]
        kept[i, top] = row[top]
    result = evaluate(probs, targets)
    assert result["mAP_top3"] == pytest.approx(np.mean(_sklearn_ap(kept, targets)))
    predicted = (kept >= 0.5) & (targets != -1)
    positive = targets == 1
    tp = (predicted & positive).sum(0)
    assert result["OP_top3"] == pytest.approx(tp.sum() / predicted.sum())
    assert result["OR_top3"] == pytest.approx(tp.sum() / positive.sum())


def test_output_types_and_ranges():
    probs, targets = _random_case(5)
    result = evaluate(probs, targets, threshold=0.3)
    expected_keys = set(METRIC_KEYS) | {k + "_top3" for k in METRIC_KEYS} | {"AP"}
    assert set(result) == expected_keys
    for key in expected_keys - {"AP"}:
        assert type(result[key]) is float, key
        assert 0.0 <= result[key] <= 1.0, key
    assert isinstance(result["AP"], np.ndarray)
    assert result["AP"].shape == (probs.shape[1],)


def test_class_without_positive_warns_and_is_left_out():
    probs = np.array([[0.9, 0.2, 0.7], [0.1, 0.8, 0.6], [0.3, 0.3, 0.2]])
    targets = np.array([[1, 0, 0], [0, 1, -1], [0, 0, 0]], dtype=np.float32)
    with pytest.warns(UserWarning, match=r"\[2\]"):
        result = evaluate(probs, targets)
    assert np.isnan(result["AP"][2])
    assert not np.isnan(result["mAP"])
    assert result["mAP"] == pytest.approx(1.0)
    # Class 2 has no positive: it is left out of the per-class mean CP, but its
    # false positive (row 0; row 1 is unknown) counts in OP: tp 2 of 3 predicted.
    assert result["CP"] == pytest.approx(1.0)
    assert result["OP"] == pytest.approx(2 / 3)
    assert result["OR"] == pytest.approx(1.0)


def test_no_warning_when_every_class_has_a_positive():
    probs, targets = _random_case(6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evaluate(probs, targets)


def test_no_positive_at_all_raises():
    with pytest.raises(ValueError, match="No class has a positive"):
        evaluate(np.full((2, 2), 0.5), np.zeros((2, 2)))


def test_zero_denominators_give_zero():
    # Nothing predicted: CP = OP = 0 and the F1 scores are 0, not NaN.
    result = evaluate(np.zeros((2, 2)), np.eye(2))
    for key in ("CP", "CR", "CF1", "OP", "OR", "OF1"):
        assert result[key] == 0.0, key


@pytest.mark.parametrize(
    "probs, targets, match",
    [
        (np.zeros(3), np.zeros(3), "2-D"),
        (np.zeros((2, 3)), np.zeros((3, 2)), "same shape"),
        (np.zeros((0, 3)), np.zeros((0, 3)), "at least one"),
        (np.array([[np.nan, 0.1]]), np.array([[1, 0]]), "finite"),
        (np.array([[np.inf, 0.1]]), np.array([[1, 0]]), "finite"),
        (
            np.array([[0.3, 0.1]]),
            np.array([[1, 0.5]]),
            r"Received: targets values \[0.5\]",
        ),
        (np.array([[0.3, 0.1]]), np.array([[1, 2]]), "targets"),
        (np.array([["a", "b"]]), np.array([[1, 0]]), "numeric"),
    ],
)
def test_bad_inputs_raise(probs, targets, match):
    with pytest.raises(ValueError, match=match):
        evaluate(probs, targets)
    with pytest.raises(ValueError, match=match):
        average_precision(probs, targets)


@pytest.mark.parametrize("threshold", [float("nan"), "high", None])
def test_bad_threshold_raises(threshold):
    with pytest.raises(ValueError, match="threshold"):
        evaluate(np.eye(2), np.eye(2), threshold=threshold)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_overall_precision_recall_match_sklearn_micro_averages(seed):
    # sklearn's micro averages over every (image, class) entry that is not
    # unknown: an independent statement of OP and OR, classes without positives
    # included.
    from sklearn.metrics import precision_score, recall_score

    rng = np.random.default_rng(seed)
    probs = rng.uniform(size=(40, 6))
    targets = (rng.uniform(size=(40, 6)) < 0.3).astype(np.float32)
    targets[:, 5] = 0  # a class without positives, predicted now and then
    targets[rng.uniform(size=targets.shape) < 0.1] = -1
    with pytest.warns(UserWarning):
        result = evaluate(probs, targets)
    valid = targets != -1
    y_true, y_pred = targets[valid] == 1, probs[valid] >= 0.5
    assert result["OP"] == pytest.approx(precision_score(y_true, y_pred))
    assert result["OR"] == pytest.approx(recall_score(y_true, y_pred))
