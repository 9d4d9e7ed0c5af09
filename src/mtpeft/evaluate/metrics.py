"""Metrics of the paper's tasks, computed from labels and predictions (numpy, no framework).

Every metric is higher-is-better. Degenerate cases return defined values instead of dividing by
zero: precision/recall/F1 are 0 when their denominator is 0, MCC is 0 when any marginal is 0
(the sklearn conventions), so a constant predictor scores 0 on F1 and MCC. The threshold-free ranking
metrics (ROC AUC, average precision) are left out of a split with one class only, where they are undefined.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats


def binary_confusion(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[int, int, int, int]:
    """``(tp, fp, fn, tn)`` with 1 as the positive class."""
    t = np.asarray(y_true).astype(int).ravel()
    p = np.asarray(y_pred).astype(int).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels but y_pred has {p.size}")
    bad = set(np.unique(np.concatenate([t, p])).tolist()) - {0, 1}
    if bad:
        raise ValueError(f"labels must be 0 or 1, got {sorted(bad)}")
    tp = int(((t == 1) & (p == 1)).sum())
    fp = int(((t == 0) & (p == 1)).sum())
    fn = int(((t == 1) & (p == 0)).sum())
    tn = int(((t == 0) & (p == 0)).sum())
    return tp, fp, fn, tn


def classification_scores(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float]:
    """Accuracy, precision, recall, F1 (positive class) and MCC.

    Example:
        >>> s = classification_scores([1, 1, 0, 0], [1, 0, 0, 0])
        >>> s["accuracy"], s["precision"], s["recall"], round(s["f1"], 4), round(s["mcc"], 4)
        (0.75, 1.0, 0.5, 0.6667, 0.5774)
    """
    scores = scores_from_confusion(*binary_confusion(y_true, y_pred))
    return {name: float(value) for name, value in scores.items()}


def scores_from_confusion(tp: ArrayLike, fp: ArrayLike, fn: ArrayLike, tn: ArrayLike) -> dict[str, np.ndarray]:
    """The classification metrics from confusion counts; elementwise, so it scores many resamples at once.

    Example:
        >>> s = scores_from_confusion([1, 0], [0, 0], [1, 2], [2, 2])
        >>> s["recall"].tolist(), s["f1"].tolist()
        ([0.5, 0.0], [0.6666666666666666, 0.0])
    """
    tp, fp, fn, tn = (np.asarray(x, dtype=float) for x in (tp, fp, fn, tn))
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    return {
        "accuracy": _ratio(tp + tn, tp + fp + fn + tn),
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "mcc": _ratio(tp * tn - fp * fn, np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))),
    }


def ranking_scores(y_true: ArrayLike, probabilities: ArrayLike) -> dict[str, float]:
    """ROC AUC and average precision of the positive class's probabilities: how well a system ranks positives
    above negatives, whatever threshold it picks (the threshold tuned on one split may not carry to another, e.g.
    from some projects to others). Empty when the labels hold one class only.

    Example:
        >>> s = ranking_scores([1, 0, 1, 0], [0.9, 0.8, 0.4, 0.1])
        >>> s["roc_auc"], round(s["average_precision"], 4)
        (0.75, 0.8333)
    """
    y = np.asarray(y_true).astype(int).ravel()[None, :]
    p = np.asarray(probabilities, dtype=float).ravel()[None, :]
    if y.shape != p.shape:
        raise ValueError(f"y_true has {y.size} labels but probabilities has {p.size}")
    if np.unique(y).size < 2:
        return {}
    return {name: float(metric(y, p)[0]) for name, metric in RANKING.items()}


def roc_auc(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """ROC AUC of each row of 0/1 labels ``y`` and scores ``p`` (2-d, one resample per row): the Mann-Whitney U of
    the positives' ranks, ties counted half (sklearn's ``roc_auc_score``); 0 for a row with one class."""
    positives = y.sum(axis=1)
    negatives = y.shape[1] - positives
    u = (stats.rankdata(p, axis=1) * y).sum(axis=1) - positives * (positives + 1) / 2
    return _ratio(u, positives * negatives)


def average_precision(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Average precision of each row (2-d, as :func:`roc_auc`): the precision at each distinct score, weighted by
    the recall it adds (sklearn's ``average_precision_score``, tied scores taken together); 0 without positives."""
    order = np.argsort(-p, axis=1, kind="stable")
    ranked_labels, ranked_scores = np.take_along_axis(y, order, axis=1), np.take_along_axis(p, order, axis=1)
    n = p.shape[1]
    precision = np.cumsum(ranked_labels, axis=1) / np.arange(1, n + 1)
    last_of_tie = np.ones_like(ranked_scores, dtype=bool)
    last_of_tie[:, :-1] = ranked_scores[:, :-1] != ranked_scores[:, 1:]
    # each position reads the precision where its group of tied scores ends
    group_end = np.minimum.accumulate(np.where(last_of_tie, np.arange(n), n)[:, ::-1], axis=1)[:, ::-1]
    at_group_end = np.take_along_axis(precision, group_end, axis=1)
    return _ratio((ranked_labels * at_group_end).sum(axis=1), ranked_labels.sum(axis=1))


RANKING = {"roc_auc": roc_auc, "average_precision": average_precision}
"""Threshold-free classification metrics, row-wise over resamples: reported beside the classification metrics and
comparable (`mtpeft compare --metric`), not a main metric, since the main metric also tunes the threshold."""


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator``, 0 where the denominator is 0."""
    out = np.zeros(np.broadcast(numerator, denominator).shape)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def retrieval_ranks(scores: ArrayLike) -> np.ndarray:
    """Rank (1 = best) of the correct candidate for each query; query i's answer is candidate i.

    Ties are broken pessimistically: the rank counts every candidate scoring at least as high as
    the correct one, so a constant scorer gets the worst rank rather than a lucky first place.

    Args:
        scores: ``(queries, candidates)`` similarity matrix over the WHOLE candidate pool.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] > s.shape[1]:
        raise ValueError(f"scores must be (queries, candidates) with queries <= candidates, got {s.shape}")
    correct = s[np.arange(s.shape[0]), np.arange(s.shape[0])][:, None]
    return (s >= correct).sum(axis=1)


def retrieval_scores(scores: ArrayLike, ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """MRR and recall@k over the whole candidate pool.

    Example:
        >>> r = retrieval_scores([[0.9, 0.1, 0.2], [0.8, 0.5, 0.1], [0.3, 0.3, 0.3]])
        >>> round(r["mrr"], 4), r["recall@1"]
        (0.6111, 0.3333333333333333)
    """
    ranks = retrieval_ranks(scores)
    out = {"mrr": float(np.mean(1.0 / ranks))}
    for k in ks:
        out[f"recall@{k}"] = float(np.mean(ranks <= k))
    return out


def constant_baseline(y_eval: ArrayLike, metric: str) -> float:
    """The best score any constant predictor (all 0 or all 1) reaches on ``y_eval`` for ``metric``.

    Stricter than the majority class alone: for F1 it is the all-positive predictor.

    Example:
        >>> constant_baseline([1, 0, 0, 0], "accuracy"), constant_baseline([1, 0, 0, 0], "f1")
        (0.75, 0.4)
    """
    y = np.asarray(y_eval).astype(int)
    return max(classification_scores(y, np.full(y.size, c))[metric] for c in (0, 1))


def random_retrieval_baseline(pool_size: int, ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """Expected MRR and recall@k of a uniformly random ranking of ``pool_size`` candidates."""
    mrr = float(np.mean(1.0 / np.arange(1, pool_size + 1))) if pool_size else 0.0
    return {"mrr": mrr, **{f"recall@{k}": min(k, pool_size) / pool_size if pool_size else 0.0 for k in ks}}
