"""Both parse rules on answers of the kind small chat models give."""

from __future__ import annotations

import pytest

from mtpeft.prompting.parsing import decide, first_word_rule, paper_rule

# answer, paper rule, first-word rule (None = unparseable)
ANSWERS = [
    ("Yes.", 1, 1),
    ("yes", 1, 1),
    ("YES", 1, 1),
    ("**Yes**, the buffer can overflow.", 1, 1),
    ("yes, there is a buffer overflow", 1, 1),
    ("Yes, it does not check the length of the input.", 0, 1),  # the paper's rule misreads this
    ("No.", 0, 0),
    ("No, it is not vulnerable", 0, 0),
    ("no", 0, 0),
    ("The code is not vulnerable", 0, None),
    ("The function isn't vulnerable.", 0, None),
    ("The function isn\u2019t vulnerable.", 0, None),
    ("I cannot determine whether this code is vulnerable.", 0, None),
    ("The code is vulnerable to a buffer overflow.", 1, None),
    ("Nope", 1, None),
    ("Noted.", 1, None),
    ("Nothing suspicious here", 1, None),
    ("", 1, None),
    ("   \n", 1, None),
    ("```c\nint main() {}\n```", 1, None),
]


@pytest.mark.parametrize(("answer", "paper", "first_word"), ANSWERS)
def test_rules_on_real_looking_answers(answer: str, paper: int, first_word: int | None) -> None:
    assert paper_rule(answer) == paper
    assert first_word_rule(answer) == first_word


def test_decide_labels_by_the_chosen_rule_and_reports_the_unparseable_share() -> None:
    answers = [a for a, _, _ in ANSWERS]
    unparseable = sum(f is None for _, _, f in ANSWERS) / len(ANSWERS)
    labels, rate = decide(answers, "paper")
    assert labels == [p for _, p, _ in ANSWERS] and rate == pytest.approx(unparseable)
    labels, rate = decide(answers, "first_word")
    assert labels == [f or 0 for _, _, f in ANSWERS] and rate == pytest.approx(unparseable)
    assert decide([], "paper") == ([], 0.0)
