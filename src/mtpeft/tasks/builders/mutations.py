"""Seed one small, realistic bug into a Python function (in the manner of CuBERT's tasks).

Each mutation changes exactly one AST node and keeps the code valid Python:

- ``comparison``: a comparison operator replaced by a near miss (``<`` -> ``<=``, ``==`` -> ``!=``, ...);
- ``binary-operator``: an arithmetic operator replaced (``+`` -> ``-``, ``*`` -> ``/``, ...);
- ``swapped-operands``: the operands of a non-commutative operation or comparison swapped;
- ``variable-misuse``: one read of a local variable replaced by another local variable of the function.
"""

from __future__ import annotations

import ast
import random
from collections.abc import Callable

_COMPARE_SWAPS: dict[type, type] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In,
}
_BINOP_SWAPS: dict[type, type] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Mod,
    ast.Mod: ast.FloorDiv, ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd, ast.LShift: ast.RShift, ast.RShift: ast.LShift,
}
_NON_COMMUTATIVE = (ast.Sub, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.LShift, ast.RShift)


def _comparison_sites(tree: ast.AST) -> list[Callable[[random.Random], None]]:
    sites = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in _COMPARE_SWAPS:
                    sites.append(lambda rng, node=node, i=i, op=op: node.ops.__setitem__(i, _COMPARE_SWAPS[type(op)]()))
    return sites


def _binary_operator_sites(tree: ast.AST) -> list[Callable[[random.Random], None]]:
    return [
        (lambda rng, node=node: setattr(node, "op", _BINOP_SWAPS[type(node.op)]()))
        for node in ast.walk(tree)
        if isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in _BINOP_SWAPS
    ]


def _swap_operand_sites(tree: ast.AST) -> list[Callable[[random.Random], None]]:
    sites: list[Callable[[random.Random], None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, _NON_COMMUTATIVE):
            if ast.dump(node.left) != ast.dump(node.right):
                sites.append(lambda rng, node=node: _swap_binop(node))
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Lt | ast.Gt):
            if ast.dump(node.left) != ast.dump(node.comparators[0]):
                sites.append(lambda rng, node=node: _swap_compare(node))
    return sites


def _swap_binop(node: ast.BinOp) -> None:
    node.left, node.right = node.right, node.left


def _swap_compare(node: ast.Compare) -> None:
    node.left, node.comparators[0] = node.comparators[0], node.left


def _variable_misuse_sites(tree: ast.AST) -> list[Callable[[random.Random], None]]:
    assigned = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    if isinstance(tree, ast.FunctionDef | ast.AsyncFunctionDef):
        assigned |= {a.arg for a in (*tree.args.posonlyargs, *tree.args.args, *tree.args.kwonlyargs)}
    locals_ = sorted(assigned - {"self", "cls"})
    if len(locals_) < 2:
        return []
    sites = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in locals_:
            others = [v for v in locals_ if v != node.id]
            sites.append(lambda rng, node=node, others=others: setattr(node, "id", rng.choice(others)))
    return sites


MUTATIONS: dict[str, Callable[[ast.AST], list[Callable[[random.Random], None]]]] = {
    "comparison": _comparison_sites,
    "binary-operator": _binary_operator_sites,
    "swapped-operands": _swap_operand_sites,
    "variable-misuse": _variable_misuse_sites,
}


def seed_bug(code: str, rng: random.Random) -> tuple[str, str] | None:
    """Return ``(buggy_code, mutation_name)``, or None when no mutation applies to ``code``.

    ``code`` must be ``ast.unparse`` output, so the buggy version differs only in the mutated node.
    """
    tree = ast.parse(code)
    function = tree.body[0]
    kinds = [k for k in MUTATIONS if MUTATIONS[k](function)]
    if not kinds:
        return None
    kind = rng.choice(kinds)
    sites = MUTATIONS[kind](function)  # fresh sites on the tree we are about to change
    rng.choice(sites)(rng)
    buggy = ast.unparse(tree)
    return (buggy, kind) if buggy != code else None
