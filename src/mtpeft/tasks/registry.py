"""The built-in tasks: the paper's four, and the embedded tasks built from the Python standard library."""

from __future__ import annotations

from mtpeft.registry import Registry
from mtpeft.tasks.spec import TaskKind, TaskSpec

TASKS: Registry[TaskSpec] = Registry("task")

_SHARED = "../shared/datasets"

for _spec in (
    TaskSpec("vulnerability", TaskKind.BINARY, "accuracy", "Is this C function vulnerable?",
             "bigvul", f"{_SHARED}/vulnerability/bigvul"),
    TaskSpec("clone", TaskKind.PAIR, "f1", "Are these two Java functions clones?",
             "bcb-csv", f"{_SHARED}/clone/bigclonebench"),
    TaskSpec("flakiness", TaskKind.BINARY, "f1", "Is this Java test method flaky?",
             "flakeflagger", f"{_SHARED}/flakiness/flakeflagger"),
    TaskSpec("search", TaskKind.RETRIEVAL, "mrr", "Which function does this description describe?",
             "stdlib-search", None),
    TaskSpec("bug", TaskKind.BINARY, "accuracy", "Is this Python function the original or a copy with a seeded bug?",
             "stdlib-bug", None),
    TaskSpec("name-mismatch", TaskKind.BINARY, "accuracy", "Is this Python function's name inconsistent with its body?",
             "stdlib-name", None),
    TaskSpec("docstring-mismatch", TaskKind.PAIR, "accuracy", "Does this docstring belong to this Python function?",
             "stdlib-docstring", None),
):
    TASKS.add(_spec.name, _spec)

DEFAULT_METRIC = {TaskKind.BINARY: "f1", TaskKind.PAIR: "f1", TaskKind.RETRIEVAL: "mrr"}
