"""Inputs are cut by characters before tokenising, and joint pairs are cut without the tokenizer's overflow: the
work per input is bounded by what a task keeps, and every id and ``truncated`` flag is what tokenising the whole
input gives."""

from __future__ import annotations

import itertools
import json

import pytest

from mtpeft.data import encode
from mtpeft.data.encode import (
    CHARS_PER_TOKEN,
    InputFormat,
    encode_inputs,
    keep_chars,
    prompt_ids,
    prompts_cut,
    tokenize,
    truncated,
)
from mtpeft.models.backbone import load_backbone

MODELS = ["tiny-bert", "tiny-llama"]  # MiniLM's WordPiece and SmolLM2's byte-level BPE


@pytest.fixture(scope="module", params=MODELS)
def tokenizer(request):
    return load_backbone(request.param).tokenizer


def functions(count: int, size: int) -> list[str]:
    """Code of every shape a model reads: short, long, indented, dense in punctuation."""
    body = "\n".join(f"    if (buf[{i}] != '\\0') {{ total += parse_{i}(buf, &len, 0x{i:04x}); }}" for i in range(size))
    return [f"static int handler_{k}(char *buf) {{\n    int total = {k};\n{body * (k % 3 + 1)}\n    return total;\n}}"
            for k in range(count)]


def whole(monkeypatch) -> None:
    """From here on nothing is cut by characters: what the tokenizer gives for the whole text."""
    monkeypatch.setattr(encode, "CHARS_PER_TOKEN", 10**9)


def outputs(tok, texts: list[str], seconds: list[str], max_length: int) -> dict:
    windowing = InputFormat(windows=True, max_windows=3).windowing(tok, max_length)
    single = tokenize(tok, texts, max_length)
    joint = tokenize(tok, seconds, max_length, texts)  # a short first input (a docstring), a long second one
    windows = encode_inputs(tok, texts, max_length, windowing)
    prompts = prompt_ids(tok, texts, max_length, "Do:")
    return {"single": (single, truncated(tok, texts, single, max_length)),
            "joint": (joint, truncated(tok, seconds, joint, max_length, texts)),
            "windows": (windows, truncated(tok, texts, windows, max_length, None, windowing)),
            "prompts": (prompts, prompts_cut(tok, texts, prompts, "Do:", max_length))}


@pytest.mark.parametrize("max_length", [8, 16, 64])
def test_cutting_by_characters_changes_no_id_and_no_flag(tokenizer, monkeypatch, max_length):
    texts = functions(12, 130)
    assert all(len(t) > max_length * CHARS_PER_TOKEN for t in texts[1:])  # the cut happens
    seconds = [f"Parse buffer {k}." for k in range(12)]
    cut = outputs(tokenizer, texts, seconds, max_length)
    whole(monkeypatch)
    assert cut == outputs(tokenizer, texts, seconds, max_length)


def test_real_functions_get_the_same_ids_cut_or_whole(shared, tokenizer, monkeypatch):
    lines = (shared / "vulnerability" / "devign" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    long = [f for f in (json.loads(line)["func"] for line in lines) if 16 * CHARS_PER_TOKEN < len(f) < 12_000][:60]
    seconds = [json.loads(line)["func"][:200] for line in lines[:60]]
    assert len(long) == 60
    cut = outputs(tokenizer, long, seconds, 16)
    whole(monkeypatch)
    assert cut == outputs(tokenizer, long, seconds, 16)


def test_joint_pairs_are_cut_exactly_as_the_tokenizer_cuts_them(tokenizer):
    for first, second, max_length in itertools.product(range(9), range(9), range(5, 12)):
        a, b = " ".join(["x"] * first), " ".join(["y"] * second)
        own = tokenizer(*encode._inputs(tokenizer, [a], [b]), truncation="longest_first", max_length=max_length)
        assert tokenize(tokenizer, [a], max_length, [b]) == own["input_ids"], (first, second, max_length)


def test_a_pair_of_huge_inputs_costs_what_it_keeps(tokenizer):
    """The tokenizer's own pair truncation builds every combination of the inputs' cut-off pieces: for these two
    200,000-character codes, more memory than the machine has."""
    code = "(" * 200_000
    rows = tokenize(tokenizer, [code, "int f();"], 64, [code, "int g();"])
    assert len(rows[0]) == 64 and len(rows[1]) < 64
    assert truncated(tokenizer, [code, "int f();"], rows, 64, [code, "int g();"]) == [True, False]


def test_a_text_cut_by_characters_says_so_even_when_few_tokens_came_of_it():
    wordpiece = load_backbone("tiny-bert").tokenizer
    blanks = "x" + " " * (8 * CHARS_PER_TOKEN) + "y"  # WordPiece drops blanks: two tokens, one past the cut
    rows = tokenize(wordpiece, [blanks], 8)
    assert len(rows[0]) < 8 and truncated(wordpiece, [blanks], rows, 8) == [True]
    assert keep_chars([blanks], 8) == [blanks[:8 * CHARS_PER_TOKEN]]
