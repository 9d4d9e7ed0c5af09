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
    texts = [ex.text for ex in examples]
    ids = [ex.id for ex in examples]
    if kind is TaskKind.RETRIEVAL:
        queries = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
        codes = tokenizer([ex.text_pair for ex in examples], truncation=True, max_length=max_length)["input_ids"]
        return EncodedSplit(kind, queries, pair_ids=codes, example_ids=ids)
    labels = [int(ex.label) for ex in examples]  # type: ignore[arg-type]
    if kind is TaskKind.PAIR:
        seconds = [_pair_separator(tokenizer) + (ex.text_pair or "") for ex in examples]
        encoded = tokenizer(texts, seconds, truncation="longest_first", max_length=max_length)["input_ids"]
    else:
        encoded = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    return EncodedSplit(kind, encoded, labels=labels, example_ids=ids)


def _pair_separator(tokenizer: Any) -> str:
    """Text put before the second input: nothing when the tokenizer has a pair template (BERT's
    [SEP]), else its end-of-sequence token, so a decoder still sees where one function ends."""
    if tokenizer.num_special_tokens_to_add(pair=True) > tokenizer.num_special_tokens_to_add(pair=False):
        return ""
    return tokenizer.eos_token or "\n"
