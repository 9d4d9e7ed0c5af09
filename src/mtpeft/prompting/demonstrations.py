"""Few-shot demonstrations from the training split: the lexically closest (BM25) or a seeded random sample.

BM25 (``rank_bm25.BM25Okapi``) runs over code tokens (:func:`mtpeft.baselines.code_tokens`: identifier parts
and numbers, lower-cased, so ``readBuffer`` and ``read_buffer`` match). A pair task is matched on
both functions together; code search on the query text.

``balanced`` (classification): half the demonstrations of each label (the top-scoring label gets the odd one), so an
imbalanced task (flakiness: ~4% positive) still shows the model a positive example. Code search
demonstrations always alternate a matching (query, code) pair and the same query with the code of
another training example. Demonstrations come back closest first; the prompt puts the closest one
last, next to the input, and drops the farthest first when it runs out of room.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from mtpeft.baselines.tokens import code_tokens
from mtpeft.prompting.templates import fields_of
from mtpeft.tasks.spec import Example, TaskKind


@dataclass(frozen=True)
class Demonstration:
    """A solved example shown before the input: the template fields and the answer (1 = yes), or the
    target text of a generation task."""

    fields: dict[str, str]
    label: int | None
    source_id: str
    target: str | None = None


class DemonstrationPicker:
    """Chooses ``shots`` demonstrations per input from a task's training examples."""

    def __init__(self, pool: list[Example], kind: TaskKind, shots: int, strategy: str, balanced: bool,
                 seed: int) -> None:
        self.pool, self.kind, self.shots, self.strategy, self.balanced, self.seed = \
            pool, kind, shots, strategy, balanced, seed
        self._bm25 = None
        if strategy == "bm25" and shots > 0:
            from rank_bm25 import BM25Okapi

            self._bm25 = BM25Okapi([code_tokens(_match_text(ex, kind)) or ["_"] for ex in pool])

    def pick(self, example: Example) -> list[Demonstration]:
        """Demonstrations for ``example``, closest (or first drawn) first."""
        if self.shots == 0:
            return []
        rng = random.Random(f"{self.seed}:{example.id}")
        if self._bm25 is not None:
            scores = self._bm25.get_scores(code_tokens(_match_text(example, self.kind)))
            order = [int(i) for i in np.argsort(-scores, kind="stable")]
        else:
            order = rng.sample(range(len(self.pool)), len(self.pool))
        order = [i for i in order if self.pool[i].id != example.id]
        if self.kind is TaskKind.RETRIEVAL:
            return self._search_pairs(order[: (self.shots + 1) // 2], rng)
        if self.kind is TaskKind.GENERATION:
            return [Demonstration(fields_of(self.pool[i]), None, self.pool[i].id, self.pool[i].target)
                    for i in order[: self.shots]]
        chosen = self._balance(order) if self.balanced else order[: self.shots]
        return [Demonstration(fields_of(self.pool[i]), int(self.pool[i].label), self.pool[i].id) for i in chosen]

    def _balance(self, order: list[int]) -> list[int]:
        """The first ``shots // 2`` of each label in ``order`` (the label ranked first gets the odd one),
        topped up from the other label when one runs short; kept in ``order``."""
        by_label = {lab: [i for i in order if self.pool[i].label == lab] for lab in (0, 1)}
        first = self.pool[order[0]].label if order else 1
        quota = {first: (self.shots + 1) // 2, 1 - first: self.shots // 2}
        for lab in (0, 1):
            short = quota[lab] - len(by_label[lab])
            if short > 0:
                quota[lab] -= short
                quota[1 - lab] += short
        chosen = set(by_label[0][: quota[0]] + by_label[1][: quota[1]])
        return [i for i in order if i in chosen]

    def _search_pairs(self, chosen: list[int], rng: random.Random) -> list[Demonstration]:
        """For each chosen query: its own code (yes), then another example's code (no)."""
        demos = []
        for i in chosen:
            ex = self.pool[i]
            demos.append(Demonstration(fields_of(ex), 1, ex.id))
            if len(self.pool) > 1 and len(demos) < self.shots:
                j = rng.randrange(len(self.pool) - 1)
                other = self.pool[j + (j >= i)]  # any example but i
                demos.append(Demonstration({"text": ex.text, "text_pair": other.text_pair or ""}, 0, other.id))
        return demos[: self.shots]


def _match_text(example: Example, kind: TaskKind) -> str:
    if kind is TaskKind.PAIR:
        return f"{example.text}\n{example.text_pair}"
    return example.text
