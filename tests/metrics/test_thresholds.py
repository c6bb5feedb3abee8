"""Per-class thresholds: F1-maximising calibration, JSON files, metrics."""

import json

import numpy as np
import pytest

from csra_tf.metrics import evaluate
from csra_tf.metrics.thresholds import (
    calibrate_thresholds,
    calibration_summary,
    threshold_metrics,
)
from csra_tf.run_folder import load_thresholds, save_thresholds


def _f1(scores, targets, threshold):
    """F1 of predicting `scores >= threshold`, unknown targets left out."""
    valid = targets != -1
    predicted = (scores >= threshold) & valid
    tp = np.sum(predicted & (targets == 1))
    n_pred, n_gt = predicted.sum(), np.sum(targets == 1)
    return 2 * tp / (n_pred + n_gt) if n_pred + n_gt else 0.0


def _random_problem(seed, n=60, c=5):
    rng = np.random.default_rng(seed)
    targets = (rng.uniform(size=(n, c)) < 0.3).astype(np.float32)
    probs = np.clip(0.35 * targets + rng.uniform(0, 0.7, (n, c)), 0, 1)
    probs = np.round(probs, 2)  # ties
    targets[rng.uniform(size=(n, c)) < 0.1] = -1
    return probs, targets


@pytest.mark.parametrize("seed", range(5))
def test_calibration_matches_a_brute_force_search(seed):
    probs, targets = _random_problem(seed)
    thresholds = calibrate_thresholds(probs, targets)
    for c in range(probs.shape[1]):
        scores, labels = probs[:, c], targets[:, c]
        valid_scores = scores[labels != -1]
        candidates = np.append(np.unique(valid_scores), np.inf)
        best = max(_f1(scores, labels, t) for t in candidates)
        assert _f1(scores, labels, thresholds[c]) == pytest.approx(best)
        # The highest of the equally good cuts, the threshold placed below it.
        better = [t for t in candidates if _f1(scores, labels, t) >= best]
        assert valid_scores[valid_scores >= thresholds[c]].min() == max(better)


def test_unknown_targets_are_ignored():
    probs = np.array([[0.9], [0.8], [0.7], [0.1]])
    targets = np.array([[1], [-1], [1], [0]])
    # With the unknown at 0.8 ignored, keeping {0.9, 0.7} is perfect.
    assert calibrate_thresholds(probs, targets)[0] == pytest.approx(0.4)


def test_a_class_without_positives_gets_the_default():
    probs = np.array([[0.9, 0.2], [0.1, 0.8]])
    targets = np.array([[1, 0], [0, -1]])
    np.testing.assert_allclose(calibrate_thresholds(probs, targets, 0.6), [0.5, 0.6])


def test_threshold_metrics_agree_with_evaluate():
    probs, targets = _random_problem(7)
    for threshold in (0.3, 0.5, 0.7):
        ours = threshold_metrics(probs, targets, threshold)
        reference = evaluate(probs, targets, threshold=threshold)
        for key in ("CP", "CR", "CF1", "OP", "OR", "OF1"):
            assert ours[key] == pytest.approx(reference[key], abs=1e-12)
    # Per-class: the same as evaluating each class alone with its threshold.
    thresholds = np.array([0.2, 0.4, 0.5, 0.6, 0.8])
    metrics = threshold_metrics(probs, targets, thresholds)
    predicted = (probs >= thresholds) & (targets != -1)
    tp = np.sum(predicted & (targets == 1), axis=0)
    op = tp.sum() / predicted.sum()
    assert metrics["OP"] == pytest.approx(op)
    calibrated = threshold_metrics(probs, targets, calibrate_thresholds(probs, targets))
    assert calibrated["OF1"] >= threshold_metrics(probs, targets, 0.5)["OF1"] - 0.05


def test_save_and_load_round_trip_by_class_name(tmp_path):
    path = tmp_path / "thresholds.json"
    save_thresholds(path, [0.25, 0.7, 0.1 + 0.2], ["cat", "dog", "car"])
    assert json.loads(path.read_text()) == {"cat": 0.25, "dog": 0.7, "car": 0.1 + 0.2}
    loaded = load_thresholds(path, ["car", "cat", "dog"])
    assert loaded.tolist() == [0.1 + 0.2, 0.25, 0.7]  # exact, in the asked order


def test_thresholds_files_are_checked(tmp_path):
    path = tmp_path / "thresholds.json"
    with pytest.raises(ValueError, match="one finite threshold per class"):
        save_thresholds(path, [0.5], ["cat", "dog"])
    with pytest.raises(ValueError, match="distinct"):
        save_thresholds(path, [0.5, 0.5], ["cat", "cat"])
    save_thresholds(path, [0.5, 0.5], ["cat", "dog"])
    with pytest.raises(ValueError, match=r"missing: \['car'\], unknown: \['dog'\]"):
        load_thresholds(path, ["cat", "car"])
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_thresholds(path, ["cat"])
    path.write_text('{"cat": "high"}')
    with pytest.raises(ValueError, match="finite numbers"):
        load_thresholds(path, ["cat"])
    with pytest.raises(ValueError, match="Received: probs.shape"):
        calibrate_thresholds(np.zeros((3, 2)), np.zeros((3, 3)))


def test_calibration_summary():
    probs, targets = _random_problem(3, n=200)
    summary = calibration_summary(probs, targets, seed=1)
    assert set(summary) == {
        "threshold_0.5",
        "calibrated_in_sample",
        "calibrated_cross_fitted",
    }
    assert summary["threshold_0.5"] == threshold_metrics(probs, targets, 0.5)
    # Cross-fitting by hand: each half scored with the other half's thresholds.
    halves = np.array_split(np.random.default_rng(1).permutation(200), 2)
    thresholds = np.empty_like(probs)
    thresholds[halves[0]] = calibrate_thresholds(probs[halves[1]], targets[halves[1]])
    thresholds[halves[1]] = calibrate_thresholds(probs[halves[0]], targets[halves[0]])
    predicted = (probs >= thresholds) & (targets != -1)
    tp = np.sum(predicted & (targets == 1))
    op, o_r = tp / predicted.sum(), tp / np.sum(targets == 1)
    assert summary["calibrated_cross_fitted"]["OF1"] == pytest.approx(
        2 * op * o_r / (op + o_r)
    )
    # In-sample calibration is at least as good as cross-fitting on OF1 here.
    in_sample = summary["calibrated_in_sample"]["OF1"]
    assert in_sample >= summary["calibrated_cross_fitted"]["OF1"]
