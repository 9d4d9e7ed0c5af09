"""Baselines every run is measured against, fitted on the run's own data: a model is only worth its cost
where it beats them."""

from mtpeft.baselines.lexical import (
           METHODS,
           LexicalResult,
           TfidfLogistic,
           bm25_scores,
           lexical_baseline,
           lexical_baselines,
)
from mtpeft.baselines.tokens import code_tokens

__all__ = ["METHODS", "LexicalResult", "TfidfLogistic", "bm25_scores", "code_tokens", "lexical_baseline",
           "lexical_baselines"]
