"""`mtpeft predict`: a jsonl file of inputs in, a jsonl file of answers out (one line each, same order).

Inputs are checked line by line with the same models as the HTTP API; a bad line is a
:class:`~mtpeft.errors.DataError` naming the file, the line and the field, before any model work.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from contextlib import nullcontext
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from mtpeft.data.collate import chunks_by_size
from mtpeft.errors import ConfigError, DataError
from mtpeft.io import write_jsonl
from mtpeft.serve.index import SearchIndex
from mtpeft.serve.predictor import Encoded, Predictor, answer_row
from mtpeft.serve.schemas import INPUTS, CodeInput, PoolItem, input_fields
from mtpeft.tasks.spec import TaskKind

STDIO = "-"
M = TypeVar("M", bound=BaseModel)


def predict_file(run_dir: str | Path, task: str, source: str = STDIO, target: str = STDIO, top_k: int = 10,
                 pool: str | None = None, batch_size: int = 32, merge: bool = False, backend: str = "torch") -> int:
    """Answer every input of ``source`` with ``task``'s head; write them to ``target``. Returns the count.

    Binary and generation tasks read ``{"code"}``, pair tasks ``{"code1", "code2"}``, retrieval tasks
    ``{"query"}`` ranked against ``pool`` (jsonl of ``{"id", "code"}``); an ``id`` field is passed through.
    A generation task answers ``{"text"}``: the decoded output, prompted as in training. ``backend``: what
    computes (see :meth:`Predictor.from_run`).
    """
    if target != STDIO and Path(target).is_dir():
        raise DataError(f"{target}: is a folder; --output takes the path of a jsonl file to write")
    predictor = Predictor.from_run(run_dir, merge=merge, backend=backend)
    if task in predictor.generation:
        if pool is not None:
            raise ConfigError(f"--pool: only for retrieval tasks; {task!r} is a generation task")
        inputs = read_models(source, CodeInput, "a generation input has code and an optional id")
        return _write(predictor.generate(task, inputs, batch_size), target)
    kind = predictor.check_task(task)
    if (kind is TaskKind.RETRIEVAL) != (pool is not None):
        raise ConfigError(f"--pool: needed for retrieval tasks, and only for them; {task!r} is a {kind} task")
    fields = ", ".join(input_fields(kind))
    inputs = read_models(source, INPUTS[kind], f"a {kind} input has {fields} and an optional id")
    encoded = predictor.encode(task, inputs)
    if pool is None:
        rows = [predictor.classify(item, out) for item, out in _run(predictor, encoded, batch_size)]
    else:
        codes = read_models(pool, PoolItem, "a pool line has id and code")
        vectors, cut = predictor.embed_pool([c.code for c in codes], batch_size)
        index = SearchIndex([c.id for c in codes], vectors, sum(cut))
        outputs = _run(predictor, encoded, batch_size)
        rows = [answer_row(item, hits=index.search(task, out, top_k)) for item, out in outputs]
    return _write(rows, target)


def _write(rows: list[dict[str, Any]], target: str) -> int:
    if target == STDIO:
        sys.stdout.writelines(json.dumps(row) + "\n" for row in rows)
    else:
        write_jsonl(target, rows)
    return len(rows)


def _run(predictor: Predictor, items: list[Encoded], batch_size: int) -> Iterable[tuple[Encoded, Any]]:
    """(item, head output) in input order; batches of similar length, as evaluation runs them."""
    outputs: dict[int, Any] = {}
    for chunk in chunks_by_size([item.sizes for item in items], batch_size):
        outputs.update(zip(chunk, predictor.forward([items[i] for i in chunk]), strict=True))
    return ((item, outputs[i]) for i, item in enumerate(items))


def read_models(source: str, model: type[M], expected: str) -> list[M]:
    """Every non-blank line of a jsonl file (``-``: stdin) as ``model``; errors name file, line and field."""
    name = "<stdin>" if source == STDIO else source
    if source != STDIO and not Path(source).is_file():
        raise DataError(f"{source}: no such file")
    out: list[M] = []
    with nullcontext(sys.stdin.buffer) if source == STDIO else Path(source).open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(f"{name}:{number}: not UTF-8 text (byte {err.start + 1} of the line is "
                                f"{raw[err.start]:#04x}); save the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line.rstrip())
            except json.JSONDecodeError as err:
                raise DataError(f"{name}:{number}: not valid JSON ({err.msg} at column {err.colno})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{name}:{number}: expected a JSON object, got {type(obj).__name__} ({expected})")
            try:
                out.append(model.model_validate(obj))
            except ValidationError as err:
                problems = "; ".join(f"field {'.'.join(map(str, e['loc']))!r}: {e['msg']}" for e in err.errors())
                raise DataError(f"{name}:{number}: {problems} ({expected})") from None
    if not out:
        raise DataError(f"{name}: no inputs")
    return out
