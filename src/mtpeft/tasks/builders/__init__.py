"""Builders: datasets made from source code on this machine."""

from mtpeft.tasks.builders import stdlib
from mtpeft.tasks.builders.python_functions import MinedFunction, mine_functions, stdlib_root

__all__ = ["MinedFunction", "mine_functions", "stdlib", "stdlib_root"]
