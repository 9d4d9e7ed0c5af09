"""The built-in tasks: the paper's four, generation tasks, and tasks built from the Python standard library."""

from __future__ import annotations

from mtpeft.registry import Registry
from mtpeft.tasks.spec import TaskKind, TaskSpec

TASKS: Registry[TaskSpec] = Registry("task")

_SHARED = "../shared/datasets"

for _spec in (
    # the paper's datasets; Big-Vul (`bigvul`) and the BigCloneBench CSVs (`bcb-csv`) are the alternatives
    TaskSpec("vulnerability", TaskKind.BINARY, "accuracy", "Is this C function vulnerable?",
             "devign", f"{_SHARED}/vulnerability/devign"),
    TaskSpec("clone", TaskKind.PAIR, "f1", "Are these two Java functions clones?",
             "bcb-codexglue", f"{_SHARED}/clone/bcb-codexglue"),
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
    TaskSpec("summarization", TaskKind.GENERATION, "smoothed_bleu", "Describe this Python function in one sentence.",
             "stdlib-summarization", None, instruction="Summarize the function above in one sentence."),
    TaskSpec("refinement", TaskKind.GENERATION, "bleu", "Fix the bug in this Java method (CodeXGLUE code refinement).",
             "line-pairs", f"{_SHARED}/refinement/codexglue-small", instruction="Fix the bug in the method above.",
             language="java"),
    TaskSpec("translation", TaskKind.GENERATION, "bleu", "Translate this Java method to C# (CodeXGLUE code-to-code).",
             "line-pairs", f"{_SHARED}/translation/codexglue-java-cs", instruction="Translate the method above to C#.",
             language="c_sharp"),
    TaskSpec("test-generation", TaskKind.GENERATION, "bleu", "Write a unit test for this Java method (Methods2Test).",
             "methods2test", None, instruction="Write a JUnit test for the method above.", language="java"),
):
    TASKS.add(_spec.name, _spec)

DEFAULT_METRIC = {TaskKind.BINARY: "f1", TaskKind.PAIR: "f1", TaskKind.RETRIEVAL: "mrr", TaskKind.GENERATION: "bleu"}
