"""Embedded tasks built from real Python source (default: this interpreter's standard library).

Labels come by construction, so these tasks need no download and no annotation:

- ``stdlib-search``: first docstring sentence -> the function without its docstring (CodeSearchNet style);
- ``stdlib-summarization``: the same pairs the other way, code -> first docstring sentence (code-to-text);
- ``stdlib-bug``: the real function (0) or a copy with one seeded bug (1), one version per function;
- ``stdlib-docstring``: (docstring, function) pairs; 1 = the docstring belongs to another function.

Every function is grouped by its file, so one module's functions never straddle train and test.
"""

from __future__ import annotations

import ast
import random
from collections.abc import Iterator
from pathlib import Path

from mtpeft.tasks.builders.mutations import seed_bug
from mtpeft.tasks.builders.python_functions import MinedFunction, mine_functions, stdlib_root
from mtpeft.tasks.readers.base import ALL, SourceData, register_source
from mtpeft.tasks.readers.csn import query_code_example
from mtpeft.tasks.spec import Example, TaskKind


def _functions(path: Path | None, max_lines: int | None = None) -> tuple[MinedFunction, ...]:
    """Mined functions; ``max_lines`` drops longer ones (so a seeded bug is never truncated away)."""
    functions = mine_functions((path or stdlib_root()).resolve())
    if max_lines is None:
        return functions
    return tuple(fn for fn in functions if fn.code.count("\n") + 1 <= max_lines)


@register_source(
    "stdlib-search", "builder", (TaskKind.RETRIEVAL,),
    "Code search mined from Python source (default: the standard library): docstring sentence -> code.",
    needs_path=False,
)
def build_search(path: Path | None = None, max_lines: int | None = None) -> SourceData:
    return _documented(path, max_lines, TaskKind.RETRIEVAL)


@register_source(
    "stdlib-summarization", "builder", (TaskKind.GENERATION,),
    "Code summarization mined from Python source (default: the standard library): code -> docstring sentence.",
    needs_path=False,
)
def build_summarization(path: Path | None = None, max_lines: int | None = None) -> SourceData:
    return _documented(path, max_lines, TaskKind.GENERATION)


def _documented(path: Path | None, max_lines: int | None, kind: TaskKind) -> SourceData:
    """Every mined function as a (first docstring sentence, code without docstring) pair, grouped by file."""
    return {ALL: [
        query_code_example(f"{fn.path}:{fn.line}:{fn.name}", fn.query, fn.code, fn.path,
                           {"file": fn.path, "line": fn.line}, kind)
        for fn in _functions(path, max_lines)
    ]}


@register_source(
    "stdlib-bug", "builder", (TaskKind.BINARY,),
    "Seeded-bug detection on Python source: the real function (0) or a copy with one seeded bug (1).",
    needs_path=False,
)
def build_bug(path: Path | None = None, seed: int = 0, max_lines: int | None = None,
              paired: bool = False) -> SourceData:
    """One version per function, buggy with probability 1/2 (when a mutation applies).

    Args:
        paired: keep BOTH versions of every function a mutation applies to (as Big-Vul keeps the
            vulnerable and the fixed function), in the same group, so the model sees minimal pairs.
    """
    rng = random.Random(seed)
    examples = []
    for fn in _functions(path, max_lines):
        ident = f"{fn.path}:{fn.line}:{fn.name}"
        meta: dict[str, object] = {"file": fn.path, "line": fn.line}
        mutated = seed_bug(fn.code, rng) if paired or rng.random() < 0.5 else None
        if mutated is not None:
            buggy, mutation = mutated
            examples.append(Example(f"{ident}:buggy", buggy, None, 1, fn.path, {**meta, "mutation": mutation}))
        if mutated is None or paired:
            examples.append(Example(ident, fn.code, None, 0, fn.path, meta))
    return {ALL: examples}


@register_source(
    "stdlib-docstring", "builder", (TaskKind.PAIR,),
    "Docstring/function mismatch on Python source: 1 = the docstring was taken from another function.",
    needs_path=False,
)
def build_docstring_mismatch(path: Path | None = None, seed: int = 0, max_lines: int | None = None) -> SourceData:
    """Half of the functions get the docstring of a random function from another file."""
    examples = []
    for fn, other in _with_donors(_functions(path, max_lines), seed):
        meta: dict[str, object] = {"file": fn.path, "line": fn.line}
        label, doc = 0, fn.docstring
        if other is not None and other.docstring != fn.docstring:
            label, doc = 1, other.docstring
            meta["docstring_from"] = f"{other.path}:{other.line}"
        examples.append(Example(f"{fn.path}:{fn.line}:{fn.name}", doc, fn.code, label, fn.path, meta))
    return {ALL: examples}


def _with_donors(functions: tuple[MinedFunction, ...] | list[MinedFunction],
                 seed: int) -> Iterator[tuple[MinedFunction, MinedFunction | None]]:
    """Every function with, for half of them (seeded), a random function from another file to borrow from."""
    rng = random.Random(seed)
    for fn in functions:
        yield fn, (_from_another_file(fn, functions, rng) if rng.random() < 0.5 else None)


def _from_another_file(fn: MinedFunction, functions: tuple[MinedFunction, ...] | list[MinedFunction],
                       rng: random.Random, tries: int = 20) -> MinedFunction | None:
    """A random function from a different file (None when none is found in a few draws)."""
    for _ in range(tries):
        other = functions[rng.randrange(len(functions))]
        if other.path != fn.path:
            return other
    return None


@register_source(
    "stdlib-name", "builder", (TaskKind.BINARY,),
    "Inconsistent method names on Python source: 1 = the function was renamed to another function's name.",
    needs_path=False,
)
def build_name_mismatch(path: Path | None = None, seed: int = 0, max_lines: int | None = None) -> SourceData:
    """Half of the functions get the name of a random function from another file (Liu et al., ICSE 2019:
    "Learning to spot and refactor inconsistent method names"). Functions whose body mentions their own
    name (recursion) are skipped, so the renamed definition leaves no trace of the old name."""
    functions = [fn for fn in _functions(path, max_lines) if fn.code.count(fn.name) == 1]
    examples = []
    for fn, other in _with_donors(functions, seed):
        meta: dict[str, object] = {"file": fn.path, "line": fn.line}
        label, code = 0, fn.code
        if other is not None and other.name != fn.name:
            label, code = 1, _renamed(fn.code, other.name)
            meta["name_from"] = f"{other.path}:{other.line}"
        examples.append(Example(f"{fn.path}:{fn.line}:{fn.name}", code, None, label, fn.path, meta))
    return {ALL: examples}


def _renamed(code: str, name: str) -> str:
    tree = ast.parse(code)
    tree.body[0].name = name  # type: ignore[attr-defined]
    return ast.unparse(tree)


def csn_records(functions: tuple[MinedFunction, ...], repo: str) -> list[dict[str, object]]:
    """Mined functions in the CodeSearchNet jsonl schema (read back by the ``csn`` reader)."""
    import io
    import tokenize

    def tokens(code: str) -> list[str]:
        try:
            return [t.string for t in tokenize.generate_tokens(io.StringIO(code).readline)
                    if t.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT,
                                      tokenize.ENDMARKER, tokenize.COMMENT)]
        except (tokenize.TokenError, IndentationError, SyntaxError):
            return code.split()

    return [
        {
            "repo": repo, "path": fn.path, "func_name": fn.name, "original_string": fn.original,
            "language": "python", "code": fn.code, "code_tokens": tokens(fn.code), "docstring": fn.docstring,
            "docstring_tokens": fn.query.split(), "url": f"file://{repo}/{fn.path}#L{fn.line}",
        }
        for fn in functions
    ]
