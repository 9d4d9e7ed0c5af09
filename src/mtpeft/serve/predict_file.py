"""`mtpeft predict`: a jsonl file of inputs in, a jsonl file of answers out (one line each, same order).

Inputs are checked line by line with the same models and size limits as the HTTP API; a bad line is a
:class:`~mtpeft.errors.DataError` naming the file, the line and the field, before any forward pass. The output
is checked before the run is even loaded, and written to a temporary file renamed onto it at the end, so a
failure never leaves half the answers, and the answers never replace an input.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any, BinaryIO, TypeVar

from pydantic import BaseModel, ValidationError

from mtpeft.data.collate import chunks_by_size
from mtpeft.errors import ConfigError, DataError
from mtpeft.io import atomic_open, json_line, not_a_file, same_file
from mtpeft.serve.index import SearchIndex
from mtpeft.serve.limits import Limits
from mtpeft.serve.predictor import Encoded, Predictor, answer_row
from mtpeft.serve.schemas import INPUTS, CodeInput, PoolItem, bounded, input_fields, repeated_id
from mtpeft.tasks.spec import TaskKind

STDIO = "-"
M = TypeVar("M", bound=BaseModel)


def predict_file(run_dir: str | Path, task: str, source: str = STDIO, target: str = STDIO, top_k: int = 10,
                 pool: str | None = None, batch_size: int = 32, merge: bool = False, backend: str = "torch",
                 limits: Limits | None = None, base_model: str | None = None) -> int:
    """Answer every input of ``source`` with ``task``'s head; write them to ``target``. Returns the count.

    Binary and generation tasks read ``{"code"}``, pair tasks ``{"code1", "code2"}``, retrieval tasks
    ``{"query"}`` ranked against ``pool`` (jsonl of ``{"id", "code"}``, ids unique); an ``id`` field is passed
    through. A generation task answers ``{"text"}``: the decoded output, prompted as in training. ``backend``: what
    computes and ``base_model`` (see :meth:`Predictor.from_run`). ``limits`` (default: the service's) caps each text
    (``max_text_chars``) and each line (``max_body_bytes``).
    """
    limits = limits or Limits()
    for flag, path in (("--input", source), ("--pool", pool)):
        if path is not None and path != STDIO:
            check_readable(path, flag)
    with answers_to(target, {"--input": source, "--pool": pool}) as sink:
        predictor = Predictor.from_run(run_dir, merge=merge, backend=backend, base_model=base_model)
        rows = _answers(predictor, task, source, pool, top_k, batch_size, limits)
        sink.writelines(json.dumps(row) + "\n" for row in rows)
    return len(rows)


def _answers(predictor: Predictor, task: str, source: str, pool: str | None, top_k: int, batch_size: int,
             limits: Limits) -> list[dict[str, Any]]:
    if task in predictor.generation:
        if pool is not None:
            raise ConfigError(f"--pool: only for retrieval tasks; {task!r} is a generation task")
        inputs = read_models(source, bounded(CodeInput, limits), "a generation input has code and an optional id",
                             limits)
        return predictor.generate(task, list(inputs.values()), batch_size)
    kind = predictor.check_task(task)
    if (kind is TaskKind.RETRIEVAL) != (pool is not None):
        raise ConfigError(f"--pool: needed for retrieval tasks, and only for them; {task!r} is a {kind} task")
    fields = ", ".join(input_fields(kind))
    inputs = read_models(source, bounded(INPUTS[kind], limits), f"a {kind} input has {fields} and an optional id",
                         limits)
    encoded = predictor.encode(task, list(inputs.values()))
    if pool is None:
        return [predictor.classify(item, out) for item, out in _run(predictor, encoded, batch_size)]
    codes = read_models(pool, bounded(PoolItem, limits), "a pool line has id and code", limits)
    check_unique_ids(pool, codes)
    vectors, cut = predictor.embed_pool([c.code for c in codes.values()], batch_size)
    index = SearchIndex([c.id for c in codes.values()], vectors, sum(cut))
    return [answer_row(item, hits=index.search(task, out, top_k)) for item, out in _run(predictor, encoded, batch_size)]


def _run(predictor: Predictor, items: list[Encoded], batch_size: int) -> Iterable[tuple[Encoded, Any]]:
    """(item, head output) in input order; batches of similar length, as evaluation runs them."""
    outputs: dict[int, Any] = {}
    for chunk in chunks_by_size([item.sizes for item in items], batch_size):
        outputs.update(zip(chunk, predictor.forward([items[i] for i in chunk]), strict=True))
    return ((item, outputs[i]) for i, item in enumerate(items))


def check_readable(path: str, flag: str) -> None:
    """Refuse what cannot be read as a jsonl file from start to end (a folder, ``/dev/zero``), naming it."""
    problem = not_a_file(path)
    if problem == "no such file":
        raise DataError(f"{path}: no such file")
    if problem is not None:
        raise DataError(f"{path}: {problem}; {flag} takes a jsonl file")


@contextmanager
def answers_to(target: str, sources: dict[str, str | None]) -> Iterator[IO[str]]:
    """Where answers go: stdout, or a temporary file beside ``target`` (through links, beside the file they name)
    made now, so that a path that cannot be written fails before any model work, and renamed onto ``target``
    only when the block succeeds. ``sources``: flag -> path of every file read, none of which it may be."""
    if target == STDIO:
        yield sys.stdout
        return
    path = Path(os.path.realpath(target))
    problem = _output_problem(path, sources)
    if problem is not None:
        raise DataError(f"{target}: {problem}")
    with ExitStack() as stack:
        try:
            handle = stack.enter_context(atomic_open(path))
        except OSError as err:  # /proc, a read-only mount, a folder without write permission
            raise DataError(f"{target}: cannot be written ({err.strerror})") from None
        yield handle


def _output_problem(path: Path, sources: dict[str, str | None]) -> str | None:
    if path.exists() and not path.is_file():
        return f"{not_a_file(path) or 'is a pipe'}; --output takes the path of a jsonl file to write (- for stdout)"
    for flag, source in sources.items():
        if source == STDIO and _is_stdin(path):
            return "is also the file on stdin; write the answers to another file"
        if source not in (None, STDIO) and same_file(source, path):
            return f"is also the {flag} file; write the answers to another file"
    if not path.parent.is_dir():
        return f"folder {path.parent} does not exist"
    if path.exists() and not os.access(path, os.W_OK):
        return "is read-only"
    return None


def _is_stdin(path: Path) -> bool:
    try:
        here, there = os.fstat(sys.stdin.fileno()), os.stat(path)
    except (OSError, ValueError):  # no such file yet; stdin is not a file (a pipe in tests, closed)
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def check_unique_ids(name: str, codes: dict[int, PoolItem]) -> None:
    """Refuse a pool whose ids repeat (as text: ``1`` and ``"1"`` would be one hit), as the service does."""
    lines, items = list(codes), list(codes.values())
    repeated = repeated_id([item.id for item in items])
    if repeated is not None:
        first, again = repeated
        raise DataError(f"{name}:{lines[again]}: id {items[again].id!r} is the id of line {lines[first]} too; pool ids "
                        "must be unique (compared as text, so 1 and \"1\" are the same)")


def read_models(source: str, model: type[M], expected: str, limits: Limits) -> dict[int, M]:
    """Every non-blank line of a jsonl file (``-``: stdin; a path :func:`check_readable` passed) as ``model``, by
    line number; see :func:`parse_lines`."""
    if source == STDIO:
        return parse_lines(sys.stdin.buffer, "<stdin>", model, expected, limits.max_body_bytes)
    with Path(source).open("rb") as handle:
        return parse_lines(handle, source, model, expected, limits.max_body_bytes)


def parse_lines(lines: BinaryIO, name: str, model: type[M], expected: str, max_line_bytes: int) -> dict[int, M]:
    """Every non-blank line of ``lines`` as ``model``, by line number; each problem is a one-line
    :class:`DataError` naming ``name``, the line and the field. Work is bounded per line: at most
    ``max_line_bytes`` bytes are read into one line, numbers and nesting as :func:`~mtpeft.io.json_line` bounds
    them, text fields as ``model`` caps them."""
    out: dict[int, M] = {}
    number = 0
    while raw := lines.readline(max_line_bytes + 1):
        number += 1
        if len(raw) > max_line_bytes:
            raise DataError(f"{name}:{number}: longer than {max_line_bytes:,} bytes; a line holds one input, and "
                            "inputs are capped as the service caps a request")
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise DataError(f"{name}:{number}: not UTF-8 text (byte {err.start + 1} of the line is "
                            f"{raw[err.start]:#04x}); save the file as UTF-8") from None
        if not line.strip():
            continue
        try:
            obj = json_line(line.rstrip())
        except ValueError as err:
            raise DataError(f"{name}:{number}: {err}") from None
        if not isinstance(obj, dict):
            raise DataError(f"{name}:{number}: expected a JSON object, got {type(obj).__name__} ({expected})")
        try:
            out[number] = model.model_validate(obj)
        except ValidationError as err:
            problems = "; ".join(f"field {'.'.join(map(str, e['loc']))!r}: {e['msg']}" for e in err.errors())
            raise DataError(f"{name}:{number}: {problems} ({expected})") from None
    if not out:
        raise DataError(f"{name}: no inputs")
    return out
