"""The predictor answers exactly as evaluation scores: same tokens, same heads, one mixed pass."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from mtpeft.data.encode import encode_examples
from mtpeft.errors import ConfigError
from mtpeft.evaluate.runner import run_split
from mtpeft.serve import Predictor
from mtpeft.serve.predictor import merge_adapter
from mtpeft.serve.schemas import CodeInput, PairInput, QueryInput
from mtpeft.tasks.spec import Example, TaskKind
from tests.serve.conftest import MAX_LENGTH, binary_rows, pair_rows, search_rows


def eval_probabilities(predictor: Predictor, task: str, examples: list[Example]) -> np.ndarray:
    """What `mtpeft eval` computes for these examples (labels are placeholders)."""
    kind = predictor.specs[task].kind
    split = encode_examples(examples, kind, predictor.tokenizer, MAX_LENGTH)
    return run_split(predictor.model, task, split, predictor.pad_id, 4, predictor.device,
                     predictor.autocast).probabilities


def test_one_mixed_pass_equals_evaluation_per_task(predictor):
    codes = [r["text"] for r in binary_rows(6)]
    pairs = [(r["a"], r["b"]) for r in pair_rows(5)]
    items = predictor.encode("overflow", [CodeInput(code=c) for c in codes]) + predictor.encode(
        "same", [PairInput(code1=a, code2=b) for a, b in pairs])
    order = [3, 7, 0, 10, 1, 8, 2, 9, 4, 5, 6]  # interleave the two tasks in one batch
    outputs = predictor.forward([items[i] for i in order])
    mixed = {i: float(torch.sigmoid(out)) for i, out in zip(order, outputs, strict=True)}
    expected = np.concatenate([
        eval_probabilities(predictor, "overflow", [Example(str(i), c, None, 0) for i, c in enumerate(codes)]),
        eval_probabilities(predictor, "same", [Example(str(i), a, b, 0) for i, (a, b) in enumerate(pairs)])])
    np.testing.assert_allclose([mixed[i] for i in range(len(items))], expected, rtol=1e-5, atol=1e-6)


def test_search_scores_equal_evaluation_scores(predictor):
    rows = search_rows(6)
    vectors, cut = predictor.embed_pool([r["code"] for r in rows], batch_size=4)
    queries = predictor.encode("find", [QueryInput(query=r["query"]) for r in rows])
    scores = torch.stack(predictor.forward(queries)) @ vectors["find"].T
    split = encode_examples([Example(str(i), r["query"], r["code"]) for i, r in enumerate(rows)], TaskKind.RETRIEVAL,
                            predictor.tokenizer, MAX_LENGTH)
    expected = run_split(predictor.model, "find", split, predictor.pad_id, 4, predictor.device, predictor.autocast)
    np.testing.assert_allclose(scores.numpy(), expected.scores, rtol=1e-5, atol=1e-6)
    assert cut == [False] * 6


def test_truncation_is_reported_only_for_inputs_that_were_cut(predictor):
    short, long = "int x;", "int x; " * 200
    ids = predictor.encode("overflow", [CodeInput(code=short), CodeInput(code=long)])
    assert [i.truncated for i in ids] == [False, True] and len(ids[1].inputs[0][0]) == MAX_LENGTH
    # an input exactly max_length tokens long is not cut
    words = predictor.tokenizer.decode(ids[1].inputs[0][0][1:-1])
    exact = predictor.encode("overflow", [CodeInput(code=words)])[0]
    assert len(exact.inputs[0][0]) == MAX_LENGTH and not exact.truncated
    pair = predictor.encode("same", [PairInput(code1="a", code2=long)])[0]
    assert pair.truncated


def test_label_uses_the_runs_tuned_threshold(predictor):
    item = predictor.encode("overflow", [CodeInput(code="x", id=7)])[0]
    threshold = predictor.thresholds["overflow"]
    just_below = torch.logit(torch.tensor(threshold, dtype=torch.float64)).float() - 1e-3
    answer = predictor.classify(item, just_below)
    assert answer["id"] == 7 and answer["label"] == 0 and answer["probability"] < threshold
    assert predictor.classify(item, just_below + 2e-3)["label"] == 1


@pytest.fixture(scope="module")
def merged(tiny_run) -> Predictor:
    return Predictor.from_run(tiny_run, merge=True)


@pytest.mark.parametrize("task", ["overflow", "same"])
def test_merged_lora_gives_the_same_outputs(predictor, merged, task):
    trained_b = [p for n, p in predictor.model.encoder.named_parameters() if "lora_B" in n]
    assert trained_b and any(p.abs().sum() > 0 for p in trained_b)  # the adapter does change the outputs
    assert not hasattr(merged.model.encoder, "merge_and_unload")  # its layers are folded away
    inputs = ([CodeInput(code=r["text"]) for r in binary_rows(4)] if task == "overflow"
              else [PairInput(code1=r["a"], code2=r["b"]) for r in pair_rows(4)])
    a = torch.stack(predictor.forward(predictor.encode(task, inputs)))
    b = torch.stack(merged.forward(merged.encode(task, inputs)))
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_merge_refuses_methods_without_a_merge():
    with pytest.raises(ConfigError, match=r"'adapter' run cannot be merged.*without --merge"):
        merge_adapter(torch.nn.Linear(2, 2), "adapter")


def test_tokenising_from_many_threads_never_skips_truncation(predictor):
    """A fast tokenizer keeps its truncation setting as state: :func:`truncated` turns it off for a moment,
    so concurrent requests must not tokenise at the same time (the server tokenises in worker threads)."""
    inputs = [CodeInput(code="int x = 1; " * 400)] * 4 + [CodeInput(code="x")] * 4
    lengths: list[int] = []

    def work(_: int) -> None:
        for _ in range(30):  # without the lock, this loses the race a few times out of 240 (measured)
            lengths.extend(sum(item.sizes) for item in predictor.encode("overflow", inputs))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))
    assert max(lengths) == MAX_LENGTH
