"""Tasks: what a task is, the built-in tasks, and the sources (readers and builders) that feed them."""

from mtpeft.tasks import builders, readers  # noqa: F401  (registers every source)
from mtpeft.tasks.load import TaskData, load_task, resolve_spec
from mtpeft.tasks.readers.base import SOURCES
from mtpeft.tasks.registry import TASKS
from mtpeft.tasks.spec import Example, TaskKind, TaskSpec

__all__ = ["SOURCES", "TASKS", "Example", "TaskData", "TaskKind", "TaskSpec", "load_task", "resolve_spec"]
