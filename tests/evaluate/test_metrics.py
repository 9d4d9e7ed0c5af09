import json

import numpy as np
import pytest

from mtpeft.evaluate.metrics import (
    average_precision,
    classification_scores,
    constant_baseline,
    random_retrieval_baseline,
    ranking_scores,
    retrieval_ranks,
    retrieval_scores,
    roc_auc,
)
from mtpeft.evaluate.outputs import SplitOutput, prediction_rows, score
from mtpeft.tasks.spec import TaskKind


def test_classification_hand_computed():
    # tp=2, fp=1, fn=1, tn=2
    s = classification_scores([1, 1, 1, 0, 0, 0], [1, 1, 0, 1, 0, 0])
    assert s["accuracy"] == pytest.approx(4 / 6)
    assert s["precision"] == pytest.approx(2 / 3)
    assert s["recall"] == pytest.approx(2 / 3)
    assert s["f1"] == pytest.approx(2 / 3)
    assert s["mcc"] == pytest.approx((2 * 2 - 1 * 1) / np.sqrt(3 * 3 * 3 * 3))


def test_degenerate_one_class_and_constant_predictions():
    only_negatives = classification_scores([0, 0, 0], [0, 0, 0])
    assert only_negatives == {"accuracy": 1.0, "precision": 0.0, "recall": 0.0, "f1": 0.0, "mcc": 0.0}
    all_positive = classification_scores([1, 0, 0, 0], [1, 1, 1, 1])
    assert all_positive["f1"] == pytest.approx(0.4) and all_positive["mcc"] == 0.0


def test_rejects_bad_labels_and_shapes():
    with pytest.raises(ValueError, match="0 or 1"):
        classification_scores([0, 2], [0, 1])
    with pytest.raises(ValueError, match="3 labels"):
        classification_scores([0, 1, 1], [0, 1])


def test_against_sklearn():
    sklearn = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    s = classification_scores(y, p)
    assert s["accuracy"] == pytest.approx(sklearn.accuracy_score(y, p))
    assert s["f1"] == pytest.approx(sklearn.f1_score(y, p))
    assert s["precision"] == pytest.approx(sklearn.precision_score(y, p))
    assert s["mcc"] == pytest.approx(sklearn.matthews_corrcoef(y, p))


def test_ranking_metrics_hand_computed():
    # positives at ranks 1 and 3 of 4: 3 of the 4 positive-negative pairs are ordered right; AP = (1/1 + 2/3) / 2
    s = ranking_scores([1, 0, 1, 0], [0.9, 0.8, 0.4, 0.1])
    assert s == {"roc_auc": 0.75, "average_precision": pytest.approx(5 / 6)}
    # a tie between a positive and a negative counts half in AUC, and both at once in AP (precision 1/2 there)
    assert ranking_scores([1, 0], [0.5, 0.5]) == {"roc_auc": 0.5, "average_precision": 0.5}
    assert ranking_scores([0, 0], [0.2, 0.7]) == {}  # undefined with one class: left out, not a made-up number


def test_a_split_is_scored_by_decisions_at_the_threshold_and_by_ranking_without_one():
    output = SplitOutput(TaskKind.BINARY, ["a", "b", "c", "d"], labels=np.array([1, 0, 1, 0]),
                         probabilities=np.array([0.9, 0.8, 0.4, 0.1]))
    strict, lenient = score(output, threshold=0.85), score(output, threshold=0.3)
    assert (strict["f1"], lenient["f1"]) == (pytest.approx(2 / 3), pytest.approx(0.8))
    assert strict["roc_auc"] == lenient["roc_auc"] == 0.75
    assert strict["average_precision"] == lenient["average_precision"] == pytest.approx(5 / 6)


def test_prediction_files_keep_the_ranking_of_a_confident_model():
    # what `mtpeft compare` reads back must rank as the run did; rounded to 6 decimals, the three lowest tied at 0
    logits = np.array([-20.0, -18.0, -16.0, 12.0, 17.0, 14.0], dtype=np.float32)
    output = SplitOutput(TaskKind.BINARY, list("abcdef"), labels=np.array([0, 1, 0, 1, 0, 1]),
                         probabilities=1 / (1 + np.exp(-logits)))
    rows = [json.loads(json.dumps(row)) for row in prediction_rows(output)]
    reread = ranking_scores(output.labels, np.array([row["probability"] for row in rows]))
    run = score(output)
    assert reread == {"roc_auc": run["roc_auc"], "average_precision": run["average_precision"]}
    assert run["roc_auc"] == pytest.approx(5 / 9)


def test_ranking_metrics_match_sklearn_with_ties_and_score_many_resamples_at_once():
    sklearn = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, (50, 40))
    p = np.round(rng.random((50, 40)), 1)  # one decimal: many ties
    y[:, 0], y[:, 1] = 0, 1  # both classes in every row
    auc, ap = roc_auc(y, p), average_precision(y, p)
    assert auc == pytest.approx([sklearn.roc_auc_score(yr, pr) for yr, pr in zip(y, p, strict=True)])
    assert ap == pytest.approx([sklearn.average_precision_score(yr, pr) for yr, pr in zip(y, p, strict=True)])


def test_retrieval_hand_computed_over_whole_pool():
    scores = [[0.9, 0.1, 0.2, 0.0],   # rank 1
              [0.8, 0.5, 0.9, 0.0],   # rank 3
              [0.1, 0.2, 0.3, 0.4]]   # rank 2 (a 4th candidate only in the pool)
    assert retrieval_ranks(scores).tolist() == [1, 3, 2]
    r = retrieval_scores(scores)
    assert r["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 2) / 3)
    assert r["recall@1"] == pytest.approx(1 / 3) and r["recall@5"] == 1.0


def test_retrieval_ties_are_pessimistic():
    constant = np.ones((4, 4))
    assert retrieval_ranks(constant).tolist() == [4, 4, 4, 4]
    assert retrieval_scores(constant)["mrr"] == pytest.approx(0.25)


def test_baselines():
    assert constant_baseline([1, 0, 0, 0], "accuracy") == 0.75
    assert constant_baseline([1, 0, 0, 0], "f1") == pytest.approx(0.4)
    assert random_retrieval_baseline(3)["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
