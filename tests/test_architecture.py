"""The import graph keeps the layering of docs/architecture.md: every import points to the same layer or a lower
one, and no two packages import each other (lazy imports inside functions count too)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "mtpeft"

LAYERS = [  # lowest first; a package may import its own layer and the ones below
    {"__init__", "errors", "registry", "io", "config"},  # __init__: the version, nothing else
    {"tasks"},
    {"data"},
    {"models", "methods"},
    {"baselines", "evaluate", "ledger"},
    {"run"},
    {"train", "serve", "export", "prompting", "data_stats"},
    {"study"},
    {"console", "cli", "__main__"},
]
LAYER_OF = {package: level for level, packages in enumerate(LAYERS) for package in packages}


def package_imports() -> dict[str, set[str]]:
    """Top-level package (or module) of mtpeft -> the mtpeft packages it imports anywhere in its code."""
    edges: dict[str, set[str]] = defaultdict(set)
    for path in SRC.rglob("*.py"):
        source = path.relative_to(SRC).parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                parts = name.split(".")
                if parts[0] == "mtpeft":
                    target = parts[1] if len(parts) > 1 else "__init__"
                    if target != source:
                        edges[source].add(target)
    return edges


def test_every_package_has_a_layer() -> None:
    found = {p.name.removesuffix(".py") for p in SRC.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()}
    assert found - {"py"} <= set(LAYER_OF), sorted(found - set(LAYER_OF))


def test_imports_never_point_upward() -> None:
    upward = sorted(f"{a} -> {b}" for a, targets in package_imports().items() for b in targets
                    if LAYER_OF[b] > LAYER_OF[a])
    assert not upward, upward


def test_no_two_packages_import_each_other() -> None:
    edges = package_imports()
    cycles = sorted(f"{a} <-> {b}" for a, targets in edges.items() for b in targets if a in edges.get(b, ()) and a < b)
    assert not cycles, cycles


def test_serving_prompting_and_reevaluation_do_not_reach_into_training() -> None:
    edges = package_imports()
    assert not {"train"} & (edges["serve"] | edges["prompting"] | edges["run"])
