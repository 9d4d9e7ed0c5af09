"""The lexical baseline: BM25 as rank_bm25 computes it, TF-IDF + logistic regression that learns from real data,
pair features that ignore the order of the pair, and the threshold rule the model uses."""

from __future__ import annotations

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from mtpeft.baselines import TfidfLogistic, bm25_scores, code_tokens, lexical_baseline
from mtpeft.config import config_from_dict
from mtpeft.evaluate.metrics import classification_scores, constant_baseline
from mtpeft.evaluate.outputs import best_threshold
from mtpeft.tasks import load_task
from mtpeft.tasks.spec import Example, TaskKind, TaskSpec


def _task(name: str, **entry):
    cfg = config_from_dict({"name": "t", "tasks": [{"name": name, **entry}]})
    return load_task(cfg.tasks[0], cfg)


@pytest.fixture(scope="module")
def search_task():
    return _task("search", max_examples={"train": 50, "validation": 60, "test": 80})


def test_bm25_equals_rank_bm25(search_task):
    examples = search_task.splits["test"]
    queries, codes = [ex.text for ex in examples], [ex.text_pair for ex in examples]
    reference = BM25Okapi([code_tokens(c) for c in codes])
    expected = np.stack([reference.get_scores(code_tokens(q)) for q in queries])
    np.testing.assert_allclose(bm25_scores(queries, codes), expected, rtol=1e-9, atol=1e-9)
    assert expected.std() > 0  # the comparison is not between two zero matrices


def test_bm25_finds_functions_by_their_docstring(search_task):
    result = lexical_baseline(search_task.spec, search_task.splits["train"], search_task.splits["validation"],
                              {"test": search_task.splits["test"]})
    ranks_random = np.mean(1 / np.arange(1, 81))
    scores = result.outputs["test"].scores
    mrr = np.mean(1 / (scores >= scores.diagonal()[:, None]).sum(axis=1))
    assert mrr > 3 * ranks_random, mrr
    assert result.threshold is None and result.method == "bm25"


@pytest.fixture(scope="module")
def flakiness(shared):
    return _task("flakiness", path=str(shared / "flakiness" / "flakeflagger"),
                 max_examples={"train": 1500, "validation": 600, "test": 600})


def test_tfidf_logistic_beats_the_constant_predictor_on_held_out_flaky_tests(flakiness):
    result = lexical_baseline(flakiness.spec, flakiness.splits["train"], flakiness.splits["validation"],
                              {"test": flakiness.splits["test"]})
    test = result.outputs["test"]
    f1 = classification_scores(test.labels, test.probabilities >= result.threshold)["f1"]
    assert f1 > constant_baseline(test.labels, "f1") + 0.15, f1


def test_threshold_is_tuned_on_validation_with_the_models_rule(flakiness):
    result = lexical_baseline(flakiness.spec, flakiness.splits["train"], flakiness.splits["validation"])
    validation = result.outputs["validation"]
    assert result.threshold == best_threshold(validation.labels, validation.probabilities, "f1")
    assert result.threshold != 0.5  # ~4% positives with balanced class weights: 0.5 is not the best cut


def _pair(i: int, first: str, second: str, label: int) -> Example:
    return Example(f"p{i}", first, second, label)


def test_pair_features_ignore_the_order_of_the_pair(search_task):
    # a pair task: is this docstring (first) the one of this function (second)?
    examples = search_task.splits["test"]
    pairs = [_pair(i, ex.text, ex.text_pair, 1) for i, ex in enumerate(examples)]
    pairs += [_pair(len(pairs) + i, ex.text, examples[(i + 7) % len(examples)].text_pair, 0)
              for i, ex in enumerate(examples)]
    model = TfidfLogistic(pair=True).fit(pairs)
    swapped = [Example(ex.id, ex.text_pair, ex.text, ex.label) for ex in pairs]
    np.testing.assert_allclose(model.probabilities(pairs), model.probabilities(swapped), rtol=1e-6)
    probs = model.probabilities(pairs)
    assert probs[:len(examples)].mean() > probs[len(examples):].mean() + 0.05  # shared words mark a match


def test_a_single_label_training_split_is_refused_and_the_run_records_why():
    examples = [Example(str(i), f"int f{i}() {{ return {i}; }}", label=1) for i in range(4)]
    with pytest.raises(ValueError, match="only label 1"):
        TfidfLogistic().fit(examples)
    spec = TaskSpec("flaky", TaskKind.BINARY, "f1", "?")
    with pytest.warns(UserWarning, match="no lexical baseline"):
        result = lexical_baseline(spec, examples, examples)
    assert result.skipped and "only label 1" in result.skipped and not result.outputs


def test_tiny_training_splits_keep_every_word():
    examples = [Example(str(i), f"int f{i}() {{ return {'strcpy' if i % 2 else 'strncpy'}(a{i}, b); }}", label=i % 2)
                for i in range(6)]  # no 1-2-gram but the shared ones occurs twice among 6 functions
    probabilities = TfidfLogistic().fit(examples).probabilities(examples)
    assert probabilities.shape == (6,)


def test_generation_baseline_copies_the_input():
    spec = TaskSpec("fix", TaskKind.GENERATION, "bleu", "fix it", language="java")
    examples = [Example("a", "int f() { return 1 }", target="int f() { return 1; }")]
    result = lexical_baseline(spec, examples, examples)
    assert result.outputs["validation"].texts == ["int f() { return 1 }"]
    assert result.outputs["validation"].references == ["int f() { return 1; }"]
