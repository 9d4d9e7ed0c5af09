"""Metrics of the generation tasks (summarization, refinement, translation, test generation), numpy and the stdlib.

They reproduce the CodeXGLUE evaluators, so our numbers can sit next to the published ones:

- ``smoothed_bleu``: code-to-text (summarization): sentence-level smoothed BLEU-4 averaged over examples
  (``Code-Text/code-to-text/evaluator/bleu.py``: ``computeMaps`` + ``bleuFromMaps``).
- ``corpus_bleu``: code-refinement and code-to-code-trans: corpus-level BLEU-4 of tensorflow/nmt's
  ``compute_bleu`` on whitespace tokens, as their ``bleu._bleu`` calls it.
- ``exact_match``: the "Acc" of those two evaluators.
- ``codebleu``: CodeBLEU through the ``codebleu`` package (tree-sitter based), ``None`` where unavailable.

Every score is on a 0-1 scale; CodeXGLUE prints 0-100, so ``100 * score`` gives their numbers (they also
round to two decimals).

Example:
    >>> s = generation_scores(["return a + b ;"], ["return a + b ;"], language=None)
    >>> s["bleu"], s["smoothed_bleu"], s["exact_match"]
    (1.0, 1.0, 1.0)
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import subprocess
import sys
import typing
import warnings
import xml.sax.saxutils
from collections import Counter
from collections.abc import Callable, Sequence
from functools import cache

import numpy as np

from mtpeft.config import CodeLanguage
from mtpeft.evaluate import codebleu_score

MAX_ORDER = 4

# The languages the callers use; all of them have a tree-sitter grammar in the ``codebleu`` package.
CODEBLEU_LANGUAGES: tuple[str, ...] = typing.get_args(CodeLanguage)


def _check_lengths(predictions: Sequence[str], references: Sequence[str]) -> None:
    """Fail loudly on misaligned inputs: a silent ``zip`` would score the wrong pairs."""
    if len(predictions) != len(references):
        raise ValueError(
            f"predictions and references must be aligned, got {len(predictions)} predictions "
            f"and {len(references)} references"
        )


def _ngrams(tokens: Sequence[str], max_order: int = MAX_ORDER) -> Counter[tuple[str, ...]]:
    """Counts of every n-gram of order 1..max_order, the unit both BLEU variants clip against."""
    counts: Counter[tuple[str, ...]] = Counter()
    for order in range(1, max_order + 1):
        for i in range(len(tokens) - order + 1):
            counts[tuple(tokens[i : i + order])] += 1
    return counts


# ---------------------------------------------------------------------------------------------------------------------
# code-to-text: smoothed sentence BLEU (CodeXGLUE Code-Text/code-to-text/evaluator/bleu.py, itself from MOSES/NIST)

_NORMALIZE1 = [(re.compile(p), r) for p, r in [("<skipped>", ""), (r"-\n", ""), (r"\n", " ")]]
_NORMALIZE2 = [
    (re.compile(p), r)
    for p, r in [
        (r"([\{-\~\[-\` -\&\(-\+\:-\@\/])", r" \1 "),  # punctuation (the apostrophe is not in these ranges)
        (r"([^0-9])([\.,])", r"\1 \2 "),  # period and comma unless preceded by a digit
        (r"([\.,])([^0-9])", r" \1 \2"),  # period and comma unless followed by a digit
        (r"([0-9])(-)", r"\1 \2 "),  # dash after a digit
    ]
]
_SPLIT_PUNCTS = re.compile(r"[\w]+|[^\s\w]")


def _split_puncts(line: str) -> str:
    """CodeXGLUE's ``splitPuncts``: words and single punctuation marks, space-joined."""
    return " ".join(_SPLIT_PUNCTS.findall(line))


def _nist_normalize(s: str) -> list[str]:
    """The reference script's ``normalize`` (NIST mteval-v11a): lowercase, tokenise punctuation, split."""
    for pattern, replace in _NORMALIZE1:
        s = pattern.sub(replace, s)
    s = xml.sax.saxutils.unescape(s, {"&quot;": '"'})
    s = f" {s} ".lower()
    for pattern, replace in _NORMALIZE2:
        s = pattern.sub(replace, s)
    return s.split()


def _smoothed_tokens(text: str) -> list[str]:
    """Tokens exactly as ``computeMaps`` then ``cook_refs``/``cook_test`` see them."""
    return _nist_normalize(_split_puncts(text.strip().lower()))


def sentence_smoothed_bleu(prediction: str, reference: str) -> float:
    """One example's smoothed BLEU-4 (the reference script's ``bleu(...)[0]``), so callers can bootstrap it.

    The smoothing adds 1 to the numerator and denominator of the 2-, 3- and 4-gram precisions (Lin & Och
    2004); the brevity penalty is ``min(0, 1 - (ref_len + 1) / (pred_len + 1))`` in log space. The
    ``sys.float_info.min`` terms are the script's: a zero unigram match gives a tiny positive score, not 0,
    and an empty prediction scores ``exp(-ref_len)``; both kept so averages match the published ones.

    Example:
        >>> sentence_smoothed_bleu("Returns the Sum.", "returns the sum .")  # case and spacing are ignored
        1.0
    """
    test = _smoothed_tokens(prediction)
    ref = _smoothed_tokens(reference)
    ref_counts = _ngrams(ref)
    correct = [0] * MAX_ORDER
    for ngram, count in _ngrams(test).items():
        correct[len(ngram) - 1] += min(ref_counts.get(ngram, 0), count)
    tiny = sys.float_info.min
    log_bleu = 0.0
    for k in range(MAX_ORDER):
        guess = max(len(test) - k, 0)
        add = 1 if k > 0 else 0
        log_bleu += math.log(correct[k] + add + tiny) - math.log(guess + add + tiny)
    log_bleu /= float(MAX_ORDER)
    brevity = min(0, 1 - float(len(ref) + 1) / (len(test) + 1))
    return math.exp(log_bleu + brevity)


def smoothed_bleu(predictions: Sequence[str], references: Sequence[str]) -> float:
    """CodeXGLUE code-to-text BLEU: the mean of ``sentence_smoothed_bleu`` over examples (0 when empty).

    ×100 gives the number their ``evaluator.py`` prints (``bleuFromMaps(...)[0]``). Unlike the tab-separated
    files the script reads, tabs and newlines inside a string are just whitespace here.

    Example:
        >>> round(smoothed_bleu(["gets the name", "closes it"], ["returns the name", "closes the stream"]), 4)
        0.5966
    """
    _check_lengths(predictions, references)
    if not predictions:
        return 0.0
    return sum(sentence_smoothed_bleu(p, r) for p, r in zip(predictions, references, strict=True)) / len(predictions)


# ---------------------------------------------------------------------------------------------------------------------
# code-refinement / code-to-code-trans: corpus BLEU (tensorflow/nmt compute_bleu, as CodeXGLUE ships it)


def corpus_bleu(predictions: Sequence[str], references: Sequence[str], smooth: bool = True) -> float:
    """CodeXGLUE code-refinement / code-to-code-trans BLEU-4: one corpus-level score on whitespace tokens.

    Their ``bleu._bleu`` calls tensorflow/nmt's ``compute_bleu`` with ``smooth=True`` (the default here, so
    ×100 gives their number before rounding): every order's precision, unigrams included, becomes
    ``(matches + 1) / (possible + 1)`` over the whole corpus. ``smooth=False`` is textbook corpus BLEU (0 when
    no 4-gram matches anywhere). Brevity penalty ``exp(1 - ref_len / pred_len)`` when the predictions are
    shorter. Where their script divides by zero this takes the formula's limits: 0.0 when every prediction is
    empty, no brevity penalty when every reference is.

    Example:
        >>> corpus_bleu(["a b c d"], ["a b c d"])
        1.0
        >>> corpus_bleu(["a b"], ["c d"], smooth=False)
        0.0
    """
    _check_lengths(predictions, references)
    if not predictions:
        return 0.0
    totals = np.sum([bleu_statistics(p, r) for p, r in zip(predictions, references, strict=True)], axis=0)
    return float(bleu_from_statistics(totals, smooth))


def bleu_statistics(prediction: str, reference: str) -> np.ndarray:
    """One example's sufficient statistics of corpus BLEU: n-gram matches and possible n-grams for
    n = 1..4, then prediction and reference lengths. Corpus BLEU is a function of their SUM, so a
    bootstrap resamples rows and sums (Koehn 2004) instead of re-tokenising every resample."""
    pred, ref = prediction.split(), reference.split()
    stats = np.zeros(2 * MAX_ORDER + 2)
    for ngram, count in (_ngrams(pred) & _ngrams(ref)).items():
        stats[len(ngram) - 1] += count
    for order in range(1, MAX_ORDER + 1):
        stats[MAX_ORDER + order - 1] = max(len(pred) - order + 1, 0)
    stats[-2:] = len(pred), len(ref)
    return stats


def bleu_from_statistics(totals: np.ndarray, smooth: bool = True) -> np.ndarray:
    """Corpus BLEU-4 from summed :func:`bleu_statistics` (``(..., 10)``: one score per leading index).

    Example:
        >>> float(bleu_from_statistics(bleu_statistics("a b c d", "a b c d")))
        1.0
    """
    totals = np.asarray(totals, dtype=np.float64)
    matches, possible = totals[..., :MAX_ORDER], totals[..., MAX_ORDER:2 * MAX_ORDER]
    pred_len, ref_len = totals[..., -2], totals[..., -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        if smooth:
            precisions = (matches + 1.0) / (possible + 1.0)
        else:
            precisions = np.where(possible > 0, matches / np.where(possible > 0, possible, 1.0), 0.0)
        geo_mean = np.exp(np.mean(np.log(np.where(precisions > 0, precisions, 1.0)), axis=-1))
        ratio = np.where(ref_len > 0, pred_len / np.where(ref_len > 0, ref_len, 1.0), np.inf)
        brevity = np.where(ratio > 1.0, 1.0, np.exp(1 - 1.0 / np.where(ratio > 0, ratio, 1.0)))
    valid = (precisions.min(axis=-1) > 0) & (pred_len > 0)
    return np.where(valid, geo_mean * brevity, 0.0)


def exact_match(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Share of predictions equal to their reference up to whitespace (the evaluators' "Acc"; 0 when empty).

    CodeXGLUE compares stripped lines of pre-tokenised (single-spaced) files; collapsing all whitespace is
    the same there and stops a model's own spacing or a trailing newline from counting as a miss.

    Example:
        >>> exact_match(["a  b\\n", "a b"], ["a b", "a c"])
        0.5
    """
    _check_lengths(predictions, references)
    if not predictions:
        return 0.0
    hits = sum(" ".join(p.split()) == " ".join(r.split()) for p, r in zip(predictions, references, strict=True))
    return hits / len(predictions)


def parse_rate(predictions: Sequence[str]) -> float:
    """Share of predictions ``ast.parse`` accepts: is generated Python even syntactically valid (0 when empty)?

    An empty string is a valid (empty) module and so counts as parsing. Warnings the parser raises on odd
    but valid code (e.g. invalid escape sequences) are silenced.

    Example:
        >>> parse_rate(["def f(x):\\n    return x", "def f(x) return x"])
        0.5
    """
    if not predictions:
        return 0.0
    ok = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for prediction in predictions:
            try:
                ast.parse(prediction)
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                continue
            ok += 1
    return ok / len(predictions)


# ---------------------------------------------------------------------------------------------------------------------
# CodeBLEU


@cache
def _codebleu_calc(language: str) -> Callable[..., dict[str, float]] | None:
    """``codebleu.calc_codebleu`` when the package and this language's grammar load, else None (probed once).

    Imported lazily: tree-sitter grammars are native code and only the generation tasks need them.
    """
    try:
        from codebleu import calc_codebleu
        from codebleu.utils import get_tree_sitter_language

        get_tree_sitter_language(language)
    except (ImportError, TypeError, AssertionError, OSError):
        # TypeError "an integer is required": a grammar package newer than the tree-sitter binding codebleu pins.
        return None
    return calc_codebleu


def codebleu_available(language: str) -> bool:
    """Whether ``codebleu`` can score ``language`` here (package installed, grammar compatible)."""
    return _codebleu_calc(language) is not None


CODEBLEU_HASH_SEED = "0"
"""The data-flow part of ``codebleu`` (as in CodeXGLUE's script) names variables in the order a Python ``set`` of
strings iterates, which follows ``PYTHONHASHSEED``: the same predictions score differently in different processes
(measured: a data-flow match of 0.783 or 0.826 on the same two Java pairs). CodeBLEU is therefore computed in a
process with this fixed seed, so a stored score reproduces anywhere."""


def codebleu(predictions: Sequence[str], references: Sequence[str], language: str) -> float | None:
    """CodeBLEU (Ren et al. 2020) with CodeXGLUE's equal weights: n-gram, weighted n-gram, AST and data-flow match.

    Computed by the maintained ``codebleu`` package (k4black/codebleu, a refactor of CodeXGLUE's
    ``code-to-code-trans/evaluator/CodeBLEU``) with its tree-sitter grammars; whitespace tokenisation as in
    CodeXGLUE. ``None`` when the package or the language's grammar cannot load, so callers can drop the
    column instead of failing. ``language`` is one of ``CODEBLEU_LANGUAGES`` (``c_sharp``, not ``cs``).

    Example:
        >>> round(codebleu(["int f() { return 1; }"], ["int f() { return 1; }"], "java"), 6)
        1.0
    """
    _check_lengths(predictions, references)
    if language not in CODEBLEU_LANGUAGES:
        raise ValueError(f"CodeBLEU language must be one of {', '.join(CODEBLEU_LANGUAGES)}, got {language!r}")
    if not codebleu_available(language):
        return None
    if not predictions:
        return 0.0
    if os.environ.get("PYTHONHASHSEED") == CODEBLEU_HASH_SEED:
        return codebleu_score.score(predictions, references, language)
    done = subprocess.run([sys.executable, codebleu_score.__file__], capture_output=True, text=True, check=False,
                          input=json.dumps([list(predictions), list(references), language]),
                          env={**os.environ, "PYTHONHASHSEED": CODEBLEU_HASH_SEED})
    if done.returncode != 0:
        raise RuntimeError(f"CodeBLEU in a child process failed: {done.stderr.strip()[-500:]}")
    return float(done.stdout)


def generation_scores(predictions: Sequence[str], references: Sequence[str], language: str | None) -> dict[str, float]:
    """All generation metrics of one run: ``bleu`` (corpus), ``smoothed_bleu``, ``exact_match``, and
    ``codebleu`` when ``language`` is given and CodeBLEU can score it, and ``parses`` for Python targets.

    ``language`` is the target's programming language, ``None`` for natural-language targets (summaries).

    Example:
        >>> sorted(generation_scores(["x = 1"], ["x = 2"], language=None))
        ['bleu', 'exact_match', 'smoothed_bleu']
    """
    _check_lengths(predictions, references)
    scores = {
        "bleu": corpus_bleu(predictions, references),
        "smoothed_bleu": smoothed_bleu(predictions, references),
        "exact_match": exact_match(predictions, references),
    }
    if language is not None:
        value = codebleu(predictions, references, language)
        if value is not None:
            scores["codebleu"] = value
    if language == "python":
        scores["parses"] = parse_rate(predictions)
    return scores
