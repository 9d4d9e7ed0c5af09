"""Turn a generated answer into a label, by the paper's rule or a stricter one, and say how often it failed.

- ``paper`` (Akli et al.): an answer that contains the word "no" or "not" is negative, anything else
  positive. Contractions count ("isn't" = "is not", "cannot" = "can not"). It never fails, so it
  hides answers that are not answers at all: "" and "I am unsure" count as positive, and
  "Yes, it does not check the length" counts as negative.
- ``first_word``: the first word must be "yes" or "no" (any case, markdown and punctuation around it
  ignored); anything else is *unparseable* and counts as negative.

The share of unparseable answers (by the ``first_word`` rule) is reported whichever rule decides.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_WORD = re.compile(r"[a-z]+")
_CONTRACTIONS = ((re.compile(r"\bcannot\b"), "can not"), (re.compile(r"n't\b"), " not"))


def paper_rule(answer: str) -> int:
    """0 when the answer contains the word "no" or "not", else 1.

    Example:
        >>> paper_rule("No, it is safe"), paper_rule("The code isn't vulnerable."), paper_rule("Yes.")
        (0, 0, 1)
    """
    text = answer.lower().replace("\u2019", "'")
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    return 0 if {"no", "not"} & set(_WORD.findall(text)) else 1


def first_word_rule(answer: str) -> int | None:
    """1 for a first word "yes", 0 for "no", None (unparseable) otherwise.

    Example:
        >>> first_word_rule("**Yes**, it overflows"), first_word_rule("No."), first_word_rule("The code is safe")
        (1, 0, None)
    """
    words = _WORD.findall(answer.lower())
    return {"yes": 1, "no": 0}.get(words[0]) if words else None


RULES: dict[str, Callable[[str], int]] = {
    "paper": paper_rule,
    "first_word": lambda answer: first_word_rule(answer) or 0,
}


def decide(answers: list[str], rule: str) -> tuple[list[int], float]:
    """Labels by ``rule`` and the share of answers the first-word rule cannot parse."""
    labels = [RULES[rule](a) for a in answers]
    unparseable = sum(first_word_rule(a) is None for a in answers) / max(len(answers), 1)
    return labels, unparseable
