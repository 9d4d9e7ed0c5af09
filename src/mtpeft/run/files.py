"""The run directory contract: the one place that spells the name of every file a run writes.

```
run.json               status: training | complete (written last: a run is finished when it says so)
config.yaml            the resolved config (every default written out)
adapter/ | model/      the shared module in its method's format (PEFT: loadable by peft) | the full model
heads.safetensors      task heads and loss weights;  heads.json: what each head is, its threshold
metrics.json           per task and split, the trivial baseline, and the mean main metric
ledger.json            parameters, bytes stored, examples, tokens, FLOPs, time, memory, versions
train_log.jsonl        one line per logging step (per-task losses, weights, lr) and per evaluation
predictions/<task>.<split>.jsonl    and <task>.<split>.lexical.jsonl: the lexical baseline's
checkpoints/last.pt    resumable training state (removed from finished study runs)
export/<format>/       what `mtpeft export` made of the run
```

Training, prompting, serving, studies and the console all reach these files through :class:`RunFiles`; nothing
here imports torch, so reading a run's records stays cheap.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

from mtpeft.io import atomic_open, read_json, write_json
from mtpeft.run.schema import PROMPTING

STORAGE = ("adapter", "model")
"""The folders a method stores its weights in (``Method.storage``)."""


@dataclass(frozen=True)
class RunFiles:
    """The paths of one run directory's files."""

    root: Path

    @property
    def status(self) -> Path:
        return self.root / "run.json"

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def heads(self) -> Path:
        return self.root / "heads.safetensors"

    @property
    def heads_info(self) -> Path:
        return self.root / "heads.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger.json"

    @property
    def train_log(self) -> Path:
        return self.root / "train_log.jsonl"

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoints" / "last.pt"

    @property
    def predictions_dir(self) -> Path:
        return self.root / "predictions"

    def predictions(self, task: str, split: str) -> Path:
        """``split`` may carry what answered: ``test.lexical``, ``validation.untrained``."""
        return self.predictions_dir / f"{task}.{split}.jsonl"

    def saved_predictions(self, task: str, split: str) -> Path:
        """The prediction file to read: as the run wrote it, or its gzipped copy (what a study commits)."""
        plain = self.predictions(task, split)
        packed = plain.with_name(plain.name + ".gz")
        return packed if not plain.is_file() and packed.is_file() else plain

    def pack_predictions(self) -> list[Path]:
        """Write a gzipped copy beside every prediction file that lacks a current one; byte for byte the same
        for the same rows (no time stamp), so a study's committed evidence changes only when its runs do."""
        packed = []
        for plain in sorted(self.predictions_dir.glob("*.jsonl")) if self.predictions_dir.is_dir() else []:
            target = plain.with_name(plain.name + ".gz")
            if target.is_file() and target.stat().st_mtime >= plain.stat().st_mtime:
                continue
            with atomic_open(target, "wb") as handle, gzip.GzipFile(fileobj=handle, mode="wb", mtime=0) as out:
                out.write(plain.read_bytes())
            packed.append(target)
        return packed

    def storage(self, folder: str) -> Path:
        """Where a method with ``storage == folder`` keeps its weights."""
        if folder not in STORAGE:
            raise ValueError(f"storage folder {folder!r}; valid: {', '.join(STORAGE)}")
        return self.root / folder

    def stored_module(self) -> Path:
        """The folder that holds this run's shared module: ``model/`` for full fine-tuning, else ``adapter/``."""
        return self.storage("model") if self.storage("model").is_dir() else self.storage("adapter")

    def export(self, fmt: str) -> Path:
        return self.root / "export" / fmt

    def required(self, kind: str | None = None) -> tuple[Path, ...]:
        """What a finished run of ``kind`` (``run.json``'s) holds besides its shared module: a prompting run has
        no weights."""
        records = (self.config, self.metrics, self.ledger)
        return records if kind == PROMPTING else (*records, self.heads, self.heads_info)

    def read_status(self) -> dict:
        """``run.json`` as a dict; an empty one when it is missing, unreadable or cut short."""
        try:
            status = read_json(self.status)
        except (OSError, ValueError):
            return {}
        return status if isinstance(status, dict) else {}

    def is_complete(self) -> bool:
        """Finished: the loop (or ``mtpeft prompt``) wrote every file and marked the run complete (its last write)."""
        status = self.read_status()
        return status.get("status") == "complete" and all(p.exists() for p in self.required(status.get("kind")))

    def mark(self, status: str, kind: str | None = None) -> None:
        """Write ``run.json``: ``training`` first, ``complete`` as the very last write of a run."""
        write_json(self.status, {"status": status, **({"kind": kind} if kind else {}), "config": self.config.name})

    def is_recorded(self) -> bool:
        """Finished, with the records a report reads (config, metrics, ledger, predictions); the weights may be
        absent, as in a study's evidence committed without them (results/<study>/)."""
        status = self.read_status()
        return status.get("status") == "complete" and all(p.exists() for p in self.required(PROMPTING))

    def is_run(self) -> bool:
        """Written by mtpeft (finished or not): what ``--overwrite`` may replace."""
        return self.status.is_file()


def is_complete(run_dir: Path) -> bool:
    """``RunFiles(run_dir).is_complete()``: the check studies, reports and the loop make most often."""
    return RunFiles(run_dir).is_complete()
