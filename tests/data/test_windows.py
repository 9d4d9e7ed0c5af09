"""Long inputs as windows: every token up to the cap lands in a window, windows overlap by the stride, and each
carries the model's special tokens; what is cut past the cap is reported."""

from __future__ import annotations

import pytest

from mtpeft.data.encode import InputFormat, Windowing, encode_examples, special_tokens, truncated
from mtpeft.models.backbone import load_backbone
from mtpeft.tasks.spec import Example, TaskKind


@pytest.fixture(scope="module")
def tokenizer():
    return load_backbone("tiny-bert").tokenizer


def long_function(words: int) -> str:
    return "int f(int x) { " + " ".join(f"x = x + v{i};" for i in range(words)) + " return x; }"


@pytest.mark.parametrize(("length", "stride", "cap"), [(1, 3, 4), (10, 3, 4), (10, 5, 2), (40, 4, 3), (6, 6, 9)])
def test_windows_cover_the_input_up_to_the_cap(length, stride, cap):
    windowing = Windowing(content=6, stride=stride, max_windows=cap, prefix=(1,), suffix=(2,))
    tokens = list(range(100, 100 + length))
    windows = windowing.split(tokens)
    assert 1 <= len(windows) <= cap
    assert all(w[0] == 1 and w[-1] == 2 and len(w) <= 8 for w in windows)
    covered = [t for w in windows for t in w[1:-1]]
    assert set(covered) == set(tokens[:windowing.coverage])  # nothing skipped, nothing invented
    starts = [w[1] for w in windows]
    assert starts == [100 + k * stride for k in range(len(windows))]
    assert windowing.count(length) == len(windows) and windowing.tokens(length) == sum(map(len, windows))


def test_encoded_windows_hold_the_whole_function_with_special_tokens(tokenizer):
    text = long_function(60)
    examples = [Example("long", text, label=1), Example("short", "int g() { return 0; }", label=0)]
    split = encode_examples(examples, TaskKind.BINARY, tokenizer, 32, inputs=InputFormat(windows=True, max_windows=8))
    prefix, suffix = special_tokens(tokenizer)
    whole = tokenizer(text, add_special_tokens=False)["input_ids"]
    rows = split.rows(0)
    assert len(rows) > 1 and all(len(r) <= 32 and r[:len(prefix)] == prefix and r[-len(suffix):] == suffix
                                 for r in rows)
    content = split.windowing.content
    assert [t for k, r in enumerate(rows) for t in r[len(prefix):-len(suffix)][k and content - split.windowing.stride:]
            ] == whole[:split.windowing.coverage]
    assert split.rows(1) == [tokenizer("int g() { return 0; }")["input_ids"]]
    assert split.input_sizes()[0] == (sum(map(len, rows)),)
    cut = truncated(tokenizer, [text, examples[1].text], split.ids, 32, windowing=split.windowing)
    assert cut == [len(whole) > split.windowing.coverage, False]


def test_siamese_pairs_keep_each_input_whole(tokenizer):
    first, second = long_function(8), long_function(9)
    pair = [Example("p", first, second, 1)]
    joint = encode_examples(pair, TaskKind.PAIR, tokenizer, 40)
    siamese = encode_examples(pair, TaskKind.PAIR, tokenizer, 40, inputs=InputFormat(siamese=True))
    assert not joint.two_inputs and len(joint.ids[0]) == 40  # both inputs share one window
    assert siamese.two_inputs
    assert siamese.ids[0] == tokenizer(first, truncation=True, max_length=40)["input_ids"]
    assert siamese.pair_ids[0] == tokenizer(second, truncation=True, max_length=40)["input_ids"]
