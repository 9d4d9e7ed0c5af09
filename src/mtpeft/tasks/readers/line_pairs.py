"""CodeXGLUE line-aligned pairs: line i of the source file is paired with line i of the target file.

Files are named ``<split>.<src>-<tgt>[.txt].<ext>``: code refinement ships ``valid.buggy-fixed.buggy``
and ``valid.buggy-fixed.fixed``, code translation ``valid.java-cs.txt.java`` and ``valid.java-cs.txt.cs``.
The direction is ``src -> tgt`` unless ``source_suffix``/``target_suffix`` say otherwise (``cs -> java``).
"""

from __future__ import annotations

import re
from pathlib import Path

from mtpeft.errors import DataError
from mtpeft.tasks.readers.base import ALL, SPLIT_ALIASES, SourceData, register_source
from mtpeft.tasks.spec import Example, TaskKind

_NAME = re.compile(r"(?P<split>[^.]+)\.(?P<src>[^.-]+)-(?P<tgt>[^.-]+)(?P<infix>(?:\.txt)?)\.(?P<ext>[^.]+)")
_EXPECTED = ("<split>.<src>-<tgt>[.txt].<ext> with split train, valid/validation/dev or test and ext src or tgt, "
             "e.g. valid.buggy-fixed.buggy + valid.buggy-fixed.fixed")


@register_source(
    "line-pairs", "reader", (TaskKind.GENERATION,),
    "CodeXGLUE line-aligned pairs (refinement, translation): a folder of <split>.<src>-<tgt>[.txt].<ext> "
    "files, or one source file; reader_args source_suffix/target_suffix pick the direction.",
)
def read_line_pairs(path: Path, source_suffix: str | None = None, target_suffix: str | None = None) -> SourceData:
    if path.is_file():
        source, target = _partner_of(path, source_suffix, target_suffix)
        return {ALL: _read_pair(source, target)}
    if not path.is_dir():
        raise DataError(f"{path}: no such file or folder (expected line-aligned pair files named {_EXPECTED})")
    stems: dict[str, set[tuple[str, str, str]]] = {}
    for file in sorted(path.iterdir()):
        match = _parse_name(file.name)
        if match and file.is_file() and match["split"] in SPLIT_ALIASES:
            stems.setdefault(match["split"], set()).add((match["src"], match["tgt"], match["infix"]))
    if not stems:
        raise DataError(f"{path}: no line-aligned pair files (expected names {_EXPECTED})")
    out: SourceData = {}
    for split_name, found in sorted(stems.items()):
        if len(found) > 1:
            names = ", ".join(f"{split_name}.{src}-{tgt}{infix}.*" for src, tgt, infix in sorted(found))
            raise DataError(f"{path}: several pairings for the {split_name} split ({names}); keep one per folder")
        ((src, tgt, infix),) = found
        source_ext, target_ext = _direction(path, src, tgt, source_suffix, target_suffix)
        stem = path / f"{split_name}.{src}-{tgt}{infix}"
        source, target = Path(f"{stem}.{source_ext}"), Path(f"{stem}.{target_ext}")
        for file in (source, target):
            if not file.is_file():
                raise DataError(f"{file}: no such file (the partner of {stem.name}.* for the {split_name} split)")
        split = SPLIT_ALIASES[split_name]
        if split in out:
            raise DataError(f"{path}: two files hold the {split} split; keep one of valid/validation/dev")
        out[split] = _read_pair(source, target)
    return out


def _parse_name(name: str) -> re.Match[str] | None:
    """The parts of a pair file's name; None when it is not one (its extension must be one side of the pair)."""
    match = _NAME.fullmatch(name)
    return match if match and match["ext"] in (match["src"], match["tgt"]) else None


def _direction(where: Path, src: str, tgt: str, source_suffix: str | None,
               target_suffix: str | None) -> tuple[str, str]:
    """The (source, target) extensions: as the name says, or as given; one given picks the other of the pair."""
    pair = (src, tgt)
    other = {src: tgt, tgt: src}
    source = source_suffix or (other[target_suffix] if target_suffix in other else src)
    target = target_suffix or other.get(source, tgt)
    if source == target:
        raise DataError(f"{where}: source_suffix and target_suffix are both {source!r}; expected two of {pair}")
    return source, target


def _partner_of(path: Path, source_suffix: str | None, target_suffix: str | None) -> tuple[Path, Path]:
    """A single source file and its target: the same name with the other extension of its pair."""
    ext = path.suffix.lstrip(".")
    if source_suffix is not None and source_suffix != ext:
        raise DataError(f"{path}: source_suffix is {source_suffix!r} but the given source file ends in .{ext}")
    match = _parse_name(path.name)
    if target_suffix is None:
        if match is None:
            raise DataError(f"{path}: cannot tell the target file from the name (expected {_EXPECTED}); "
                            "give reader_args.target_suffix")
        target_suffix = match["tgt"] if ext == match["src"] else match["src"]
    if target_suffix == ext:
        raise DataError(f"{path}: target_suffix {target_suffix!r} is the source file's own extension")
    target = path.with_suffix(f".{target_suffix}")
    if not target.is_file():
        raise DataError(f"{target}: no such file (the partner of {path.name})")
    return path, target


def _read_pair(source: Path, target: Path) -> list[Example]:
    sources, targets = _lines(source), _lines(target)
    if len(sources) != len(targets):
        raise DataError(f"{source} has {len(sources)} lines but {target} has {len(targets)}; "
                        "expected the same number (line i of one pairs with line i of the other)")
    return [Example(f"{source.name}:{line}", text, meta={"file": str(source), "line": line, "target_file": str(target)},
                    target=answer)
            for line, (text, answer) in enumerate(zip(sources, targets, strict=True), start=1)]


def _lines(path: Path) -> list[str]:
    """Every line without its newline, otherwise untouched; only ``\\n`` ends a line (code may hold ``\\r``)."""
    lines = []
    with open(path, encoding="utf-8", newline="\n") as handle:
        for number, text in enumerate(handle, start=1):
            text = text.removesuffix("\n").removesuffix("\r")
            if not text.strip():
                raise DataError(f"{path}:{number}: empty line; expected one example per line")
            lines.append(text)
    return lines
