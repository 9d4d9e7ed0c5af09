"""The lexical baseline: what a bag of code tokens scores on a run's own examples.

A model that loses to word counts has learned nothing a user needs it for, so every run fits this baseline on
its own training split and scores it on the same validation and test examples as the model, with the same
threshold rule (tuned on validation, applied unchanged to test) and the same metric code:

- ``binary``: TF-IDF over code tokens (identifier parts, word 1-2-grams) + logistic regression with balanced
  class weights;
- ``pair``: the two inputs' TF-IDF vectors combined as elementwise product and absolute difference + the same
  logistic regression;
- ``retrieval``: BM25 (Okapi) of each query against the code of every candidate in the pool;
- ``generation``: the input copied as the answer (a bug fix is mostly its bug; a summary is not its code).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from scipy import sparse

from mtpeft.baselines.tokens import code_tokens
from mtpeft.evaluate.outputs import SplitOutput, best_threshold
from mtpeft.tasks.load import TaskData
from mtpeft.tasks.spec import Example, TaskKind, TaskSpec

METHODS: dict[TaskKind, str] = {
    TaskKind.BINARY: "tf-idf + logistic regression",
    TaskKind.PAIR: "tf-idf [u*v, |u-v|] + logistic regression",
    TaskKind.RETRIEVAL: "bm25",
    TaskKind.GENERATION: "copy the input",
}
"""What the lexical baseline of each task kind is, as written into metrics.json."""

MAX_FEATURES = 200_000
"""Vocabulary cap of the TF-IDF models (most frequent 1-2-grams): bounds memory on large training sets."""
MIN_DF = 2
"""A 1-2-gram enters the vocabulary when it occurs in this many training texts (a hapax cannot generalise) ..."""
SMALL = 100
"""... unless the training split has fewer distinct texts than this, where every word counts."""


@dataclass
class LexicalResult:
    """A lexical baseline fitted on one task: its outputs per split and the threshold tuned on validation, or why
    it could not be fitted (``skipped``: a training split with one label, or without a word seen twice)."""

    method: str
    outputs: dict[str, SplitOutput]
    threshold: float | None
    fit_time_s: float  # fitting and scoring every split
    skipped: str | None = None


def lexical_baseline(spec: TaskSpec, train: list[Example], validation: list[Example],
                     others: dict[str, list[Example]] | None = None) -> LexicalResult:
    """Fit on ``train``, score ``validation`` and every split of ``others`` (e.g. ``{"test": [...]}``).

    Classification tasks get the threshold that maximises the task's metric on ``validation``.
    """
    start = time.perf_counter()
    try:
        predict = _fit(spec, train)
    except ValueError as err:  # the run goes on: its report says why this baseline is missing
        warnings.warn(f"task {spec.name!r}: no lexical baseline ({err})", stacklevel=2)
        return LexicalResult(METHODS[spec.kind], {}, None, time.perf_counter() - start, skipped=str(err))
    splits = {"validation": validation, **(others or {})}
    outputs = {name: predict(examples) for name, examples in splits.items()}
    threshold = None
    if spec.is_classification:
        val = outputs["validation"]
        threshold = best_threshold(val.labels, val.probabilities, spec.metric)
    return LexicalResult(METHODS[spec.kind], outputs, threshold, time.perf_counter() - start)


def lexical_baselines(tasks: dict[str, TaskData], splits: Sequence[str] = ("validation", "test"),
                      ) -> dict[str, LexicalResult]:
    """The lexical baseline of every task, fitted on its training split and scored on ``splits``."""
    return {name: lexical_baseline(data.spec, data.splits["train"], data.splits["validation"],
                                   {s: data.splits[s] for s in splits if s != "validation"})
            for name, data in sorted(tasks.items())}


def _fit(spec: TaskSpec, train: list[Example]) -> Callable[[list[Example]], SplitOutput]:
    if spec.kind is TaskKind.GENERATION:
        return lambda examples: SplitOutput(spec.kind, [ex.id for ex in examples], texts=[ex.text for ex in examples],
                                            references=[ex.target or "" for ex in examples], language=spec.language)
    if spec.kind is TaskKind.RETRIEVAL:
        return lambda examples: SplitOutput(spec.kind, [ex.id for ex in examples], scores=bm25_scores(
            [ex.text for ex in examples], [ex.text_pair or "" for ex in examples]))
    model = TfidfLogistic(pair=spec.kind is TaskKind.PAIR).fit(train)
    return lambda examples: SplitOutput(spec.kind, [ex.id for ex in examples],
                                        labels=np.array([ex.label for ex in examples], dtype=int),
                                        probabilities=model.probabilities(examples))


class TfidfLogistic:
    """TF-IDF (sublinear tf, 1-2-grams of code tokens) + logistic regression with balanced class weights.

    A pair is featurised as ``[u * v, |u - v|]`` of its two TF-IDF vectors: what the two functions share and
    where they differ, independent of their order.
    """

    def __init__(self, pair: bool = False) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        self.pair = pair
        self.vectorizer = TfidfVectorizer(analyzer=_unigrams_and_bigrams, sublinear_tf=True, min_df=MIN_DF,
                                          max_features=MAX_FEATURES, dtype=np.float32)
        self.classifier = LogisticRegression(class_weight="balanced", max_iter=1000)

    def fit(self, examples: list[Example]) -> TfidfLogistic:
        labels = np.array([ex.label for ex in examples], dtype=int)
        if len(set(labels.tolist())) < 2:
            raise ValueError(f"the training split holds only label {labels[0]}; a classifier needs both")
        texts = _texts(examples, self.pair)
        unique = _unique(texts)
        if len(unique) < SMALL:  # too few texts for a word to be seen twice
            self.vectorizer.set_params(min_df=1)
        vectors = self.vectorizer.fit_transform(unique)  # one tokenising pass over the training texts
        self.classifier.fit(self._combine(vectors, unique, texts, len(examples)), labels)
        return self

    def probabilities(self, examples: list[Example]) -> np.ndarray:
        """P(label = 1) per example, ``(len(examples),)``."""
        if not examples:
            return np.zeros(0)
        texts = _texts(examples, self.pair)
        unique = _unique(texts)
        features = self._combine(self.vectorizer.transform(unique), unique, texts, len(examples))
        return self.classifier.predict_proba(features)[:, 1].astype(np.float64)

    def _combine(self, vectors: sparse.csr_matrix, unique: list[str], texts: list[str],
                 count: int) -> sparse.csr_matrix:
        """Per example, its features from the vectors of the distinct texts (a function in many pairs is
        tokenised once)."""
        row_of = {text: i for i, text in enumerate(unique)}
        rows = vectors[[row_of[t] for t in texts]]
        if not self.pair:
            return rows
        first, second = rows[:count], rows[count:]
        return sparse.hstack([first.multiply(second), abs(first - second)], format="csr")


def bm25_scores(queries: Sequence[str], candidates: Sequence[str]) -> np.ndarray:
    """BM25 Okapi scores ``(queries, candidates)`` of each query against every candidate, over code tokens.

    ``rank_bm25`` fits the statistics (idf with its floor for very common terms, document lengths, k1, b);
    the scores are then one sparse product instead of a Python loop per query and term, with the same value
    as ``BM25Okapi.get_scores`` (tested).
    """
    from rank_bm25 import BM25Okapi

    if not queries or not candidates:
        return np.zeros((len(queries), len(candidates)))
    bm25 = BM25Okapi([code_tokens(text) or [""] for text in candidates])
    vocabulary = {term: i for i, term in enumerate(bm25.idf)}
    rows, cols, values = [], [], []
    length_norm = bm25.k1 * (1 - bm25.b + bm25.b * np.asarray(bm25.doc_len) / bm25.avgdl)
    for doc, frequencies in enumerate(bm25.doc_freqs):
        for term, tf in frequencies.items():
            rows.append(doc)
            cols.append(vocabulary[term])
            values.append(bm25.idf[term] * tf * (bm25.k1 + 1) / (tf + length_norm[doc]))
    weights = sparse.csr_matrix((values, (rows, cols)), shape=(len(candidates), len(vocabulary)))
    counts = _term_counts([code_tokens(q) for q in queries], vocabulary)
    return np.asarray((counts @ weights.T).todense(), dtype=np.float64)


def _term_counts(token_lists: list[list[str]], vocabulary: dict[str, int]) -> sparse.csr_matrix:
    """Query term counts over ``vocabulary`` (a repeated query term counts again, as in ``get_scores``)."""
    rows, cols = [], []
    for i, tokens in enumerate(token_lists):
        for token in tokens:
            if token in vocabulary:
                rows.append(i)
                cols.append(vocabulary[token])
    return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(token_lists), len(vocabulary)))


def _unigrams_and_bigrams(text: str) -> list[str]:
    tokens = code_tokens(text)
    return tokens + list(map(" ".join, pairwise(tokens)))


def _texts(examples: list[Example], pair: bool) -> list[str]:
    """One text per example; for pairs, every first input and then every second one."""
    firsts = [ex.text for ex in examples]
    return [*firsts, *(ex.text_pair or "" for ex in examples)] if pair else firsts


def _unique(texts: list[str]) -> list[str]:
    return list(dict.fromkeys(texts))


