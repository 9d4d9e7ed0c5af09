"""A table written three ways: Markdown for the report, CSV for scripts, LaTeX for papers."""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

from mtpeft.io import write_text

Cell = str | int | float | None


@dataclass(frozen=True)
class Table:
    name: str  # file stem under tables/
    title: str
    columns: list[str]
    rows: list[list[Cell]]
    digits: int = 3

    def markdown(self) -> str:
        lines = ["| " + " | ".join(self.columns) + " |",
                 "|" + "|".join("---:" if self._numeric(i) else "---" for i in range(len(self.columns))) + "|"]
        lines += ["| " + " | ".join(self._text(c) for c in row) + " |" for row in self.rows]
        return "\n".join(lines)

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows([["" if c is None else c for c in row] for row in self.rows])
        return out.getvalue()

    def latex(self) -> str:
        spec = "l" + "r" * (len(self.columns) - 1)
        body = [" & ".join(_latex_escape(self._text(c)) for c in row) + r" \\" for row in self.rows]
        return "\n".join([r"\begin{table}[t]", r"\centering", rf"\caption{{{_latex_escape(self.title)}}}",
                          rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
                          " & ".join(_latex_escape(c) for c in self.columns) + r" \\", r"\midrule", *body,
                          r"\bottomrule", r"\end{tabular}", r"\end{table}", ""])

    def write(self, folder: Path) -> None:
        write_text(folder / f"{self.name}.csv", self.csv())
        write_text(folder / f"{self.name}.tex", self.latex())

    def _numeric(self, column: int) -> bool:
        """Right-align columns of numbers (also formatted ones such as "0.512 ± 0.010" or "12.5%")."""
        texts = [self._text(row[column]) for row in self.rows]
        return bool(texts) and all(re.fullmatch(r"[-+–\[\]0-9.,%x± <]*", t) for t in texts)

    def _text(self, cell: Cell) -> str:
        if cell is None or (isinstance(cell, float) and math.isnan(cell)):
            return "–"
        if isinstance(cell, float):
            return f"{cell:.{self.digits}f}"
        return str(cell)


def _latex_escape(text: str) -> str:
    for char, escaped in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                          ("±", r"$\pm$"), ("–", "--"), ("Δ", r"$\Delta$")):
        text = text.replace(char, escaped)
    return text
