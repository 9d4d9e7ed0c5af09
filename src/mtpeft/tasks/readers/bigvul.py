"""Big-Vul (Fan et al., MSR 2020): CSV files with the original columns.

``func_before`` of a row with ``vul`` = 1 is a vulnerable function; ``func_after`` is the same
function after the fix, a non-vulnerable example. Both versions share the commit as their group,
so they always land in the same split.
"""

from __future__ import annotations

from pathlib import Path

from mtpeft.errors import DataError
from mtpeft.tasks.readers.base import ALL, SourceData, iter_csv, parse_label, register_source
from mtpeft.tasks.spec import Example, TaskKind

_COLUMNS = ("func_before", "func_after", "vul", "commit_id")


@register_source(
    "bigvul", "reader", (TaskKind.BINARY,),
    "Big-Vul CSV (a file or a folder of CSVs): func_before = vulnerable, func_after = fixed; grouped by commit.",
)
def read_bigvul(path: Path, include_fixed: bool = True) -> SourceData:
    """Read one Big-Vul CSV or every ``*.csv`` in a folder.

    Args:
        include_fixed: add the fixed ``func_after`` of each vulnerable row as a negative example.
    """
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    if not files:
        raise DataError(f"{path}: no *.csv files (expected Big-Vul CSVs with columns {', '.join(_COLUMNS)})")
    examples: list[Example] = []
    seen: set[str] = set()
    for file in files:
        for line, row in iter_csv(file, _COLUMNS):
            vul = parse_label(row["vul"], file, line, "vul")
            before, after = row["func_before"], row["func_after"]
            if not before.strip():
                raise DataError(f"{file}:{line}: field 'func_before' is empty; expected the function's code")
            group = row["commit_id"] or f"{file.name}:{line}"
            meta = {"file": str(file), "line": line, "cwe": row.get("CWE ID", ""), "project": row.get("project", "")}
            candidates = [(before, vul, "before")]
            if vul == 1 and include_fixed and after.strip() and after != before:
                candidates.append((after, 0, "after"))
            for code, label, version in candidates:
                key = f"{label}:{code}"
                if key in seen:  # the same function listed under several CWEs
                    continue
                seen.add(key)
                examples.append(Example(f"{file.stem}:{line}:{version}", code, None, label, group, meta))
    return {ALL: examples}
