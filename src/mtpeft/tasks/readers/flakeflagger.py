"""FlakeFlagger: ``<project>/{flakyMethods,nonFlakyMethods}/*.java``, one test method per file."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

from mtpeft.errors import DataError
from mtpeft.tasks.readers.base import ALL, SourceData, register_source, require_dir
from mtpeft.tasks.spec import Example, TaskKind

_LABEL_DIRS = {"flakyMethods": 1, "nonFlakyMethods": 0}


@register_source(
    "flakeflagger", "reader", (TaskKind.BINARY,),
    "FlakeFlagger <project>/{flakyMethods,nonFlakyMethods}/*.java; split_by=random (stratified) or project.",
)
def read_flakeflagger(path: Path, split_by: Literal["random", "project"] = "random") -> SourceData:
    """Read every project folder under ``path``.

    Args:
        split_by: ``random`` for a stratified random split (the paper), ``project`` to keep each
            project's tests in one split (a harder, cross-project evaluation).
    """
    if split_by not in ("random", "project"):
        raise DataError(f"flakeflagger: split_by is {split_by!r}; expected 'random' or 'project'")
    require_dir(path, "FlakeFlagger project folders")
    projects = sorted(p for p in path.iterdir() if p.is_dir())
    examples: list[Example] = []
    empty: list[Path] = []
    for project in projects:
        label_dirs = [project / d for d in _LABEL_DIRS if (project / d).is_dir()]
        if not label_dirs:
            raise DataError(f"{project}: expected a flakyMethods/ and/or nonFlakyMethods/ folder")
        for label_dir in label_dirs:
            label = _LABEL_DIRS[label_dir.name]
            for file in sorted(label_dir.glob("*.java")):
                code = file.read_text(encoding="utf-8", errors="replace")
                if not code.strip():  # the published data has a few empty files
                    empty.append(file)
                    continue
                group = project.name if split_by == "project" else None
                meta = {"file": str(file), "project": project.name}
                examples.append(Example(f"{project.name}/{label_dir.name}/{file.stem}", code, None, label, group, meta))
    if empty:
        warnings.warn(f"flakeflagger: skipped {len(empty)} empty .java file(s), e.g. {empty[0]}", stacklevel=2)
    if not examples:
        raise DataError(f"{path}: no *.java test methods under <project>/flakyMethods or nonFlakyMethods")
    return {ALL: examples}
