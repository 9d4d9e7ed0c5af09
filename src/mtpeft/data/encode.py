"""Tokenise a task's examples once, up front, so the training loop does no per-example Python work."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mtpeft.tasks.spec import Example, TaskKind


@dataclass
class EncodedSplit:
    """Token ids of one split of one task.

    Classification: ``ids[i]`` is the (joint, for pairs) input of example i and ``labels[i]`` its label.
    Retrieval: ``ids[i]`` is query i and ``pair_ids[i]`` the code that answers it.
    """

    kind: TaskKind
    ids: list[list[int]]
    labels: list[int] = field(default_factory=list)
    pair_ids: list[list[int]] = field(default_factory=list)
    example_ids: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def lengths(self) -> list[int]:
        """Tokens per example (query + code for retrieval): what a batch of it costs."""
        if self.kind is TaskKind.RETRIEVAL:
            return [len(a) + len(b) for a, b in zip(self.ids, self.pair_ids, strict=True)]
        return [len(a) for a in self.ids]

    def longest_inputs(self) -> list[int]:
        """Tokens of each example's longest single input (what truncation is applied to)."""
        if self.kind is TaskKind.RETRIEVAL:
            return [max(len(a), len(b)) for a, b in zip(self.ids, self.pair_ids, strict=True)]
        return self.lengths()


def encode_examples(examples: list[Example], kind: TaskKind, tokenizer: Any, max_length: int) -> EncodedSplit:
    """Tokenise with truncation to ``max_length`` (pairs: longest-first, so both inputs keep their start)."""
    ids = [ex.id for ex in examples]
    if not examples:  # a run reloaded without its data (serving) has empty splits
        return EncodedSplit(kind, [], example_ids=ids)
    texts = [ex.text for ex in examples]
    if kind is TaskKind.RETRIEVAL:
        queries = tokenize(tokenizer, texts, max_length)
        codes = tokenize(tokenizer, [ex.text_pair or "" for ex in examples], max_length)
        return EncodedSplit(kind, queries, pair_ids=codes, example_ids=ids)
    labels = [int(ex.label) for ex in examples]  # type: ignore[arg-type]
    pairs = [ex.text_pair or "" for ex in examples] if kind is TaskKind.PAIR else None
    return EncodedSplit(kind, tokenize(tokenizer, texts, max_length, pairs), labels=labels, example_ids=ids)


def tokenize(tokenizer: Any, texts: list[str], max_length: int, pairs: list[str] | None = None) -> list[list[int]]:
    """Token ids of single inputs, or of ``(texts[i], pairs[i])`` encoded jointly, truncated to ``max_length``
    (longest-first for pairs, so both inputs keep their start).

    The one place inputs become tokens, so training, evaluation and serving see identical ids.
    """
    return tokenizer(*_inputs(tokenizer, texts, pairs), truncation="longest_first", max_length=max_length)["input_ids"]


def truncated(tokenizer: Any, texts: list[str], ids: list[list[int]], max_length: int,
              pairs: list[str] | None = None) -> list[bool]:
    """Which inputs :func:`tokenize` cut short (``ids`` is its output for the same arguments).

    Only rows that came back ``max_length`` long can have been cut, so only those are tokenised again.
    """
    full = [i for i, row in enumerate(ids) if len(row) >= max_length]
    flags = [False] * len(ids)
    if full:
        again = _inputs(tokenizer, [texts[i] for i in full], None if pairs is None else [pairs[i] for i in full])
        for i, row in zip(full, tokenizer(*again, truncation=False, verbose=False)["input_ids"], strict=True):
            flags[i] = len(row) > max_length
    return flags


def _inputs(tokenizer: Any, texts: list[str], pairs: list[str] | None) -> tuple[list[str], ...]:
    return (texts,) if pairs is None else (texts, [_pair_separator(tokenizer) + p for p in pairs])


def _pair_separator(tokenizer: Any) -> str:
    """Text put before the second input: nothing when the tokenizer has a pair template (BERT's
    [SEP]), else its end-of-sequence token, so a decoder still sees where one function ends."""
    if tokenizer.num_special_tokens_to_add(pair=True) > tokenizer.num_special_tokens_to_add(pair=False):
        return ""
    return tokenizer.eos_token or "\n"
