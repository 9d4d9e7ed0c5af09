"""CodeBLEU through the ``codebleu`` package, with CodeXGLUE's equal weights.

Also a script: ``python codebleu_score.py`` scores ``[predictions, references, language]`` read as JSON from
stdin. :func:`mtpeft.evaluate.generation.codebleu` runs it so in a child process with a fixed hash seed; as a
script it imports nothing of mtpeft (nor torch), so the child starts in a fraction of a second.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence

WEIGHTS = (0.25, 0.25, 0.25, 0.25)  # n-gram, weighted n-gram, syntax (AST), data flow


def score(predictions: Sequence[str], references: Sequence[str], language: str) -> float:
    from codebleu import calc_codebleu

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the package warns on the root logger for every batch without data flow
    try:
        result = calc_codebleu(list(references), list(predictions), lang=language, weights=WEIGHTS)
    finally:
        root.setLevel(level)
    return float(result["codebleu"])


if __name__ == "__main__":
    predictions, references, language = json.load(sys.stdin)
    print(json.dumps(score(predictions, references, language)))
