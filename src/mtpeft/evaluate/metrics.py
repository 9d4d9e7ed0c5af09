"""Metrics of the paper's tasks, computed from labels and predictions (numpy, no framework).

Every metric is higher-is-better. Degenerate cases return defined values instead of dividing by
zero: precision/recall/F1 are 0 when their denominator is 0, MCC is 0 when any marginal is 0
(the sklearn conventions), so a constant predictor scores 0 on F1 and MCC.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


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
