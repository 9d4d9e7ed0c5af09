"""The run directory contract: what a finished run stores, and how it is loaded back.

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
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from safetensors.torch import load_file

from mtpeft.config import RunConfig, dump_config, load_config
from mtpeft.errors import RunError
from mtpeft.io import read_json, save_safetensors, write_json, write_text
from mtpeft.run.build import Assembled, assemble, load_tasks, reading
from mtpeft.run.schema import PROMPTING, Metrics, read_metrics

REQUIRED = ("config.yaml", "heads.safetensors", "heads.json", "metrics.json", "ledger.json")
PROMPT_REQUIRED = ("config.yaml", "metrics.json", "ledger.json")  # a prompting run has no weights
CHECKPOINT = "checkpoints/last.pt"


def save_artifacts(run_dir: Path, config: RunConfig, built: Assembled, thresholds: dict[str, float]) -> None:
    """Write config, the shared module and the heads (each file atomically)."""
    write_text(run_dir / "config.yaml", dump_config(config))
    built.method.save(built.model.encoder, built.backbone, run_dir / built.method.storage)
    tensors = {f"heads.{k}": v for k, v in built.model.heads.state_dict().items()}
    tensors.update({f"loss_weighting.{k}": v for k, v in built.weighting.state_dict().items()})
    save_safetensors(run_dir / "heads.safetensors", tensors, metadata={"format": "pt"})
    write_json(run_dir / "heads.json", {
        "pooling": built.model.pooling,
        "virtual_tokens": built.model.virtual_tokens,
        "loss_weighting": {"kind": config.loss_weighting, "weights": built.weighting.weights()},
        "tasks": {name: {"kind": str(data.spec.kind), "metric": data.spec.metric,
                         "head": type(built.model.heads[name]).__name__, "threshold": thresholds.get(name)}
                  for name, data in built.tasks.items()},
    })


@dataclass
class TrainedRun:
    config: RunConfig
    built: Assembled
    thresholds: dict[str, float]
    metrics: Metrics


def is_complete(run_dir: Path) -> bool:
    """Finished: the loop (or ``mtpeft prompt``) wrote every file and marked the run complete (its last write)."""
    try:
        status = read_json(run_dir / "run.json")
    except (OSError, ValueError):  # missing, unreadable or cut short: not finished
        return False
    if not isinstance(status, dict):
        return False
    required = PROMPT_REQUIRED if status.get("kind") == PROMPTING else REQUIRED
    return status.get("status") == "complete" and all((run_dir / f).exists() for f in required)


def check_complete(run_dir: Path) -> None:
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: no such run directory")
    missing = [f for f in REQUIRED if not (run_dir / f).exists()]
    if not (run_dir / "adapter").is_dir() and not (run_dir / "model").is_dir():
        missing.append("adapter/ or model/")
    if missing:
        raise RunError(f"{run_dir}: incomplete run (missing {', '.join(missing)}); finish it with "
                       f"`mtpeft train {run_dir / 'config.yaml'} --resume`")
    if not is_complete(run_dir):  # every file is there, but the loop never wrote its last word
        raise RunError(f"{run_dir / 'run.json'}: the run is not marked complete (it is training, or stopped before "
                       "its last write, and its files may mix two trainings); finish it with "
                       f"`mtpeft train {run_dir / 'config.yaml'} --resume`, or train it again with --overwrite")


def load_trained(run_dir: Path, with_data: bool = True) -> TrainedRun:
    """Rebuild a finished run from its files alone: the same model, heads and thresholds.

    ``with_data=False`` skips reading and tokenising the tasks' data (``built.encoded`` splits are empty):
    serving needs only the model, and must work where the training data is absent.
    """
    check_complete(run_dir)
    config = load_config(run_dir / "config.yaml")
    storage = run_dir / ("model" if (run_dir / "model").is_dir() else "adapter")
    built = assemble(config, tasks=None if with_data else load_tasks(config, with_data=False), adapter_dir=storage)
    with reading(run_dir / "heads.safetensors", "the task heads of the config's tasks"):
        state = load_file(str(run_dir / "heads.safetensors"))
        heads = {k.removeprefix("heads."): v for k, v in state.items() if k.startswith("heads.")}
        weights = {k.removeprefix("loss_weighting."): v for k, v in state.items() if k.startswith("loss_weighting.")}
        built.model.heads.load_state_dict(heads, strict=True)
        built.weighting.load_state_dict(weights, strict=True)
    with reading(run_dir / "heads.json", "the tuned thresholds ({\"tasks\": {task: {\"threshold\": ...}}})"):
        info = read_json(run_dir / "heads.json")
        thresholds = {t: float(v["threshold"]) for t, v in info["tasks"].items() if v.get("threshold") is not None}
    return TrainedRun(config, built, thresholds, read_metrics(run_dir / "metrics.json"))
