import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mtpeft.evaluate import generation
from mtpeft.evaluate.generation import (
    codebleu,
    codebleu_available,
    corpus_bleu,
    exact_match,
    generation_scores,
    parse_rate,
    sentence_smoothed_bleu,
    smoothed_bleu,
)

# --- hand-computed cases -------------------------------------------------------------------------------------------


def test_perfect_match_is_one():
    preds = ["public void f ( ) { return ; }", "Returns the sum of two numbers."]
    assert corpus_bleu(preds, preds) == pytest.approx(1.0)
    assert corpus_bleu(preds, preds, smooth=False) == pytest.approx(1.0)
    assert smoothed_bleu(preds, preds) == pytest.approx(1.0)
    assert exact_match(preds, preds) == 1.0


def test_corpus_bleu_known_precisions():
    # pred "the cat sat on the mat" vs ref "the cat sat on a mat", 6 tokens each (no brevity penalty):
    #   1-grams: the(clipped to 1), cat, sat, on, mat       -> 5/6
    #   2-grams: the cat, cat sat, sat on (of 5)            -> 3/5
    #   3-grams: the cat sat, cat sat on (of 4)             -> 2/4
    #   4-grams: the cat sat on (of 3)                      -> 1/3
    pred, ref = ["the cat sat on the mat"], ["the cat sat on a mat"]
    assert corpus_bleu(pred, ref, smooth=False) == pytest.approx((5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25)
    # CodeXGLUE's smoothing: (matches + 1) / (possible + 1) on every order
    assert corpus_bleu(pred, ref) == pytest.approx((6 / 7 * 4 / 6 * 3 / 5 * 2 / 4) ** 0.25)


def test_corpus_bleu_is_corpus_level_not_an_average():
    # matches and lengths are pooled before dividing: a perfect line + a line with one unigram hit
    # 1-grams 5/8, 2-grams 3/6, 3-grams 2/4, 4-grams 1/2 (the mean of the two sentence BLEUs, 1 and 0, is 0.5)
    score = corpus_bleu(["a b c d", "w x y z"], ["a b c d", "e f g z"], smooth=False)
    assert score == pytest.approx((5 / 8 * 3 / 6 * 2 / 4 * 1 / 2) ** 0.25)


def test_corpus_bleu_brevity_penalty():
    # every n-gram of the 4-token prediction is in the 8-token reference: precisions 1, BP = exp(1 - 8/4)
    assert corpus_bleu(["a b c d"], ["a b c d e f g h"], smooth=False) == pytest.approx(math.exp(-1))
    assert corpus_bleu(["a b c d"], ["a b c d e f g h"]) == pytest.approx(math.exp(-1))
    # a 3-token prediction has no 4-gram at all: 0 unsmoothed
    assert corpus_bleu(["a b c"], ["a b c d e f"], smooth=False) == 0.0
    # longer predictions are not penalised (precision drops instead)
    assert corpus_bleu(["a b c d e f"], ["a b c"], smooth=False) == 0.0  # no 4-gram can match a 3-token ref


def test_smoothing_rescues_a_missing_4gram():
    # pred "a b c x" vs ref "a b c d": no 4-gram matches, so unsmoothed corpus BLEU is 0, but the code-to-text
    # sentence BLEU smooths orders 2-4: 1-gram 3/4, 2-gram (2+1)/(3+1), 3-gram (1+1)/(2+1), 4-gram (0+1)/(1+1),
    # brevity min(0, 1 - (4+1)/(4+1)) = 0
    pred, ref = ["a b c x"], ["a b c d"]
    assert corpus_bleu(pred, ref, smooth=False) == 0.0
    assert smoothed_bleu(pred, ref) == pytest.approx((3 / 4 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25)
    assert smoothed_bleu(pred, ref) > 0


def test_smoothed_bleu_brevity_and_normalisation():
    # "a b" vs "a b c d": 1-gram 2/2, 2-gram (1+1)/(1+1), 3-/4-grams (0+1)/(0+1); brevity 1 - (4+1)/(2+1) = -2/3
    assert sentence_smoothed_bleu("a b", "a b c d") == pytest.approx(math.exp(-2 / 3))
    # lowercased, punctuation split off words: these are the same token sequence
    assert sentence_smoothed_bleu("Gets the user's NAME.", "gets the user ' s name .") == pytest.approx(1.0)
    # averaged over sentences
    assert smoothed_bleu(["a b", "a b c d"], ["a b c d", "a b c d"]) == pytest.approx((math.exp(-2 / 3) + 1) / 2)


def test_exact_match_whitespace_normalised():
    assert exact_match(["a  b\n", "a b", " x"], ["a b", "a c", "x "]) == pytest.approx(2 / 3)


def test_parse_rate():
    valid = ["def f(x):\n    return x + 1\n", "import os\nprint(os.sep)", "x = '\\d'"]  # the last warns, still parses
    invalid = ["def f(x) return x", "for i in range(3) print(i)", "x = 1\0"]
    assert parse_rate(valid) == 1.0
    assert parse_rate(invalid) == 0.0
    assert parse_rate(valid + invalid) == 0.5
    assert parse_rate([""]) == 1.0  # an empty module is valid Python
    assert parse_rate([]) == 0.0


def test_length_mismatch_raises():
    for fn in (corpus_bleu, smoothed_bleu, exact_match):
        with pytest.raises(ValueError, match="aligned"):
            fn(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="aligned"):
        generation_scores(["a", "b"], ["a"], language=None)


def test_empty_strings_and_inputs_do_not_crash():
    s = generation_scores(["", "a b"], ["x y z", ""], language=None)
    assert set(s) == {"bleu", "smoothed_bleu", "exact_match"}
    assert all(0.0 <= v <= 1.0 for v in s.values())
    assert corpus_bleu([""], ["a b"]) == 0.0  # the reference script divides by zero here
    assert corpus_bleu(["a b"], [""]) == pytest.approx((1 / 3 * 1 / 2) ** 0.25)  # nothing to fall short of: BP 1
    # the code-to-text script scores an empty prediction exp(-ref_len) (its float_info.min terms): kept as is
    assert sentence_smoothed_bleu("", "a b c") == pytest.approx(math.exp(-3))
    assert generation_scores([], [], language=None) == {"bleu": 0.0, "smoothed_bleu": 0.0, "exact_match": 0.0}


def test_python_scores_include_parse_rate():
    s = generation_scores(["x = 1", "x = "], ["x = 1", "x = 2"], language="python")
    assert s["parses"] == 0.5 and s["exact_match"] == 0.5
    assert "parses" not in generation_scores(["int x;"], ["int x;"], language="java")


# --- against the CodeXGLUE reference scripts -----------------------------------------------------------------------
#
# The expected numbers below are what CodeXGLUE's own scripts print (×100, unrounded) on the same data:
#   corpus BLEU:   compute_bleu(refs, preds, 4, smooth=True) as called by bleu._bleu of
#                  https://github.com/microsoft/CodeXGLUE/blob/main/Code-Code/code-refinement/evaluator/bleu.py
#                  (tensorflow/nmt nmt/scripts/bleu.py; same file in Code-Code/code-to-code-trans/evaluator),
#                  files read line by line, each line .strip().split(); smooth=False numbers from the same function
#   smoothed BLEU: bleuFromMaps(*computeMaps(["i\tpred" lines], gold file of "i\tref" lines))[0] of
#                  https://github.com/microsoft/CodeXGLUE/blob/main/Code-Text/code-to-text/evaluator/bleu.py
#   accuracy:      the refinement evaluator.py's count of ref.strip() == pred.strip()
# The scripts ran unmodified under Python 3.11 (they need no Python-2 fixes); they are not vendored here,
# only their outputs, so the project carries no third-party code.

NL_PAIRS = [  # (prediction, reference) summaries, code-to-text style; includes an empty prediction
    ("Returns the number of elements in this list.", "Returns the number of elements in the list."),
    ("Creates a new instance of the parser.", "Constructs a parser with the given options."),
    (
        "Closes the stream and releases any resources.",
        "Closes this stream and releases any system resources associated with it.",
    ),
    ("Get the user name", "Returns the name of the current user."),
    ("Sets the value", "Sets the value of the field to the given value."),
    ("Checks if the string is empty", "Returns true if the string is null or empty."),
    ("Converts a date to a string", "Formats the given date using the default pattern."),
    ("Add an item to the cart", "Adds the item to the shopping cart and updates the total."),
    ("", "Deletes the file."),
    ("Parse JSON from input stream", "Parses a JSON document from the given input stream."),
    ("Compute the hash code of the object", "Returns a hash code value for the object."),
    ("Reads 4 bytes, e.g. an int (big-endian) & returns it", "Reads four bytes and returns an int, big-endian."),
]

# name -> (corpus BLEU smoothed as CodeXGLUE, corpus BLEU unsmoothed, code-to-text smoothed BLEU, accuracy), all ×100
REFERENCE_OUTPUTS = {
    "refinement": (77.60881115870289, 77.60627159978536, 75.82396089610343, 0.0),
    "translation": (19.351712700737416, 19.338084168947216, 54.11728339774838, 0.20040080160320642),
    "nl": (17.87607517404174, 16.646766170075157, 23.46407272402779, 0.0),
}


def _lines(path: Path, limit: int | None = None) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[:limit] if limit else lines


def _pairs(name: str, shared: Path | None) -> tuple[list[str], list[str]]:
    if name == "nl":
        return [p for p, _ in NL_PAIRS], [r for _, r in NL_PAIRS]
    assert shared is not None
    if name == "refinement":  # the buggy method as "prediction" of the fixed one, first 300 validation pairs
        base = shared / "refinement" / "codexglue-small" / "valid.buggy-fixed"
        return _lines(Path(f"{base}.buggy"), 300), _lines(Path(f"{base}.fixed"), 300)
    base = shared / "translation" / "codexglue-java-cs" / "valid.java-cs.txt"  # Java "predicted" for C#, all pairs
    return _lines(Path(f"{base}.java")), _lines(Path(f"{base}.cs"))


@pytest.mark.parametrize("name", ["refinement", "translation", "nl"])
def test_matches_codexglue_reference_scripts(name: str, request: pytest.FixtureRequest):
    shared = None if name == "nl" else request.getfixturevalue("shared")  # skips where ../shared/datasets is absent
    preds, refs = _pairs(name, shared)
    bleu, bleu_unsmoothed, c2t, acc = REFERENCE_OUTPUTS[name]
    assert 100 * corpus_bleu(preds, refs) == pytest.approx(bleu, abs=1e-6)
    assert 100 * corpus_bleu(preds, refs, smooth=False) == pytest.approx(bleu_unsmoothed, abs=1e-6)
    assert 100 * smoothed_bleu(preds, refs) == pytest.approx(c2t, abs=1e-6)
    assert 100 * exact_match(preds, refs) == pytest.approx(acc, abs=1e-6)


def test_codexglue_printed_numbers(shared: Path):
    # what the refinement evaluator prints: BLEU rounded to 2 decimals (77.61 and 19.35 from the scripts)
    assert round(100 * corpus_bleu(*_pairs("refinement", shared)), 2) == 77.61
    assert round(100 * corpus_bleu(*_pairs("translation", shared)), 2) == 19.35


# --- CodeBLEU ------------------------------------------------------------------------------------------------------

PROGRAMS = {  # language -> (reference, a different program)
    "python": ("def add(a, b):\n    return a + b", "def sub(x, y):\n    z = x - y\n    return z"),
    "java": (
        "public int add(int a, int b) { return a + b; }",
        "public int sub(int x, int y) { int z = x - y; return z; }",
    ),
    "c_sharp": (
        "public int Add(int a, int b) { return a + b; }",
        "public int Sub(int x, int y) { var z = x - y; return z; }",
    ),
}


@pytest.mark.parametrize("language", sorted(PROGRAMS))
def test_codebleu_perfect_and_different(language: str):
    if not codebleu_available(language):
        pytest.skip(f"codebleu cannot score {language} here")
    ref, other = PROGRAMS[language]
    perfect = codebleu([ref], [ref], language)
    different = codebleu([other], [ref], language)
    assert perfect == pytest.approx(1.0, abs=1e-6)
    assert different is not None and 0.0 <= different < perfect
    assert codebleu(["", ref], [ref, ref], language) is not None  # an empty prediction does not crash
    assert generation_scores([ref], [ref], language)["codebleu"] == pytest.approx(1.0, abs=1e-6)


def test_codebleu_unknown_language_and_unavailable(monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(ValueError, match="c_sharp"):
        codebleu(["x"], ["x"], "cs")
    monkeypatch.setattr(generation, "_codebleu_calc", lambda language: None)
    assert codebleu(["x"], ["x"], "java") is None
    assert "codebleu" not in generation_scores(["x"], ["x"], language="java")


HASH_SENSITIVE = (  # the package's data-flow match scores these 0.783 or 0.826, depending on PYTHONHASHSEED
    ["public int sum(int a, int b) { int d = a * b; int c = d + a; return c + b; }",
     "int f(int x, int y) { int z = y; z = z + x; x = z - y; return x * z + y; }"],
    ["public int sum(int a, int b) { int c = a + b; int d = c * a; return d + b; }",
     "int f(int x, int y) { int z = x; z = z + y; y = z - x; return y * z + x; }"],
)


def test_codebleu_is_the_same_in_every_process():
    if not codebleu_available("java"):
        pytest.skip("codebleu cannot score java here")
    script = ("import json, sys; from codebleu import calc_codebleu; from mtpeft.evaluate.generation import codebleu; "
              "p, r = json.loads(sys.argv[1]); "
              "print(calc_codebleu(r, p, lang='java')['dataflow_match_score'], codebleu(p, r, 'java'))")
    outputs = {seed: subprocess.run([sys.executable, "-c", script, json.dumps(HASH_SENSITIVE)], check=True,
                                    capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": seed}
                                    ).stdout.split()
               for seed in ("1", "3")}
    assert outputs["1"][0] != outputs["3"][0]  # the package alone: differs between these two processes
    assert outputs["1"][1] == outputs["3"][1]  # through mtpeft: one value
    assert float(outputs["1"][1]) == codebleu(*HASH_SENSITIVE, "java")
