"""Metrics and the evaluation runner (used by training for validation and by `mtpeft eval`)."""

from mtpeft.evaluate.generation import generation_scores
from mtpeft.evaluate.metrics import (
    classification_scores,
    constant_baseline,
    random_retrieval_baseline,
    retrieval_ranks,
    retrieval_scores,
)
from mtpeft.evaluate.outputs import SplitOutput, best_threshold, prediction_rows, score
from mtpeft.evaluate.runner import embed, run_split

__all__ = ["SplitOutput", "best_threshold", "classification_scores", "constant_baseline", "embed", "generation_scores",
           "prediction_rows", "random_retrieval_baseline", "retrieval_ranks", "retrieval_scores", "run_split", "score"]
