"""Benchmark: the paper's four backbones at their real sizes, multi-task training on a GPU, against a plain
`transformers.Trainer` + `peft` baseline in the same run; and the paper-gpu protocol's wall time projected from it.

The backbones are those of `configs/study-paper-gpu.yaml` (UniXcoder, CodeT5+ 770M's encoder, DeepSeek-Coder-1.3B,
Qwen2.5-Coder-1.5B), built from their configs in `bench/gpu_configs/` with random weights (no weights and no hub:
speed and memory do not depend on the values). Each trains the study's MFT run with LoRA and with the serial
bottleneck adapter through mtpeft's own training step (`mtpeft.train.loop.train_step`: round-robin steps of a
batch of each of the paper's four task shapes, two binary classifications, a jointly encoded pair, and retrieval
with its query and code encoded apart), on synthetic token ids with every row at `max_length` (512): the most
the protocol's truncation lets a row cost, so the projection is an upper bound. The baseline trains the same rows
as one LoRA sequence classifier with the Trainer's defaults. Both warm up for `--warmup` steps, then are timed.

Reported per run: tokens/s, training FLOPs (the project's analytic count, `mtpeft.ledger.flops`), their share of
the device's bf16 peak (NVIDIA's dense figure by GPU name, else a measured matmul), peak memory, and the protocol's
projected hours at the measured rate. Apart from any run, `projection` gives each backbone x method's protocol
FLOPs and hours at `--utilisation` of a named GPU's peak (and at the measured share, where that GPU ran).

Usage:
    python bench/gpu.py --out gpu.json                                    # on a CUDA GPU, bf16 autocast
    python bench/gpu.py --device cpu --tiny --out tiny.json               # the same code on the tiny models (CI)
    python bench/gpu.py --device cpu --flops-only --out projection.json   # the projection alone, no training
"""

from __future__ import annotations

import argparse
import copy
import gc
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from train_throughput import ROOT, matmul_peak, plain_trainer, synchronize, with_lora
from transformers import TrainerCallback

from mtpeft.config import SPLITS, RunConfig, dump_config
from mtpeft.data.collate import collate
from mtpeft.data.encode import EncodedSplit
from mtpeft.data.samplers import epoch_plan
from mtpeft.io import read_json, write_json
from mtpeft.ledger import (
    FlopModel,
    TrainCounters,
    attended_pairs,
    count_parameters,
    cpu_info,
    flop_model,
    package_versions,
    peak_rss_bytes,
)
from mtpeft.models.backbone import random_backbone
from mtpeft.models.zoo import resolve_model
from mtpeft.run.build import Assembled, assemble, load_tasks
from mtpeft.run.device import make_accelerator, resolve_precision
from mtpeft.run.directory import RunDirectory
from mtpeft.study.config import load_study
from mtpeft.study.grid import PlannedRun, expand
from mtpeft.tasks import TaskKind
from mtpeft.train.loop import open_session, train_step

STUDY = ROOT / "configs" / "study-paper-gpu.yaml"
CONFIGS = Path(__file__).resolve().parent / "gpu_configs"
METHODS = ("lora", "adapter")
PROTOCOL_TRAIN_SIZES = {  # training examples per task of configs/paper-gpu.yaml's data
    "vulnerability": 16_227,  # the shared Devign copy
    "clone": 90_102,  # the shared 10% of BigCloneBench's training pairs
    "flakiness": 11_448,  # 60% of the shared FlakeFlagger's 19,080 tests
    "search": 251_820,  # AdvTest's training split; round robin makes the largest task set the epoch
}
GPU_BF16_PEAKS = (  # dense bf16 tensor-core TFLOP/s (NVIDIA datasheets); the first key in the device's name wins
    ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("H200", 989.0), ("A100", 312.0),
    ("L40S", 362.0), ("L4", 121.0),
)
PROJECTED_GPU = "H100 SXM"


@dataclass(frozen=True)
class IdsOnly:
    """Stands in for the tokenizer: the inputs are synthetic token ids, and only the padding id is read."""

    pad_token_id: int


class EncoderClassifier(nn.Module):
    """The baseline for a T5 encoder, as a user writes it (transformers' ``T5ForSequenceClassification`` runs the
    decoder too): the encoder, mean pooling and a linear layer."""

    def __init__(self, encoder: nn.Module, hidden: int) -> None:
        super().__init__()
        self.encoder, self.config = encoder, encoder.config
        self.classifier = nn.Linear(hidden, 2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor | None = None,
                **_: Any) -> dict[str, torch.Tensor]:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask[..., None].to(hidden.dtype)
        out = {"logits": self.classifier((hidden * mask).sum(1) / mask.sum(1))}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(out["logits"].float(), labels)
        return out


class StepClock(TrainerCallback):
    """Reads the clock at the end of every Trainer step, once the device has done its work."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.ends = device, []

    def on_step_end(self, *_: Any, **__: Any) -> None:
        synchronize(self.device)
        self.ends.append(time.perf_counter())


def paper_runs(backbones: list[str] | None, methods: list[str]) -> list[PlannedRun]:
    """The study's MFT runs with ``methods``, on ``backbones`` (Hugging Face ids; default: all four), in the study's
    order of models."""
    study = load_study(STUDY)
    runs = [r for r in expand(study) if r.setting == "mft" and r.method in methods
            and (not backbones or r.model in backbones)]
    return sorted(runs, key=lambda r: (study.axes.model.index(r.model), methods.index(r.method)))


def hf_config(model: str, tiny: bool) -> tuple[Any, str]:
    """The committed config of ``model`` and where it is from; ``tiny``: the zoo's tiny model of its architecture."""
    from transformers import AutoConfig

    path = CONFIGS / f"{model.split('/')[-1]}.json"
    data = read_json(path)
    if tiny:
        name = f"tiny-{data['model_type']}"
        return AutoConfig.from_pretrained(resolve_model(name)), name
    return AutoConfig.for_model(**data), str(path.relative_to(ROOT))


def pad_id(hf: Any) -> int:
    return int(hf.pad_token_id if hf.pad_token_id is not None else hf.eos_token_id)


def bench_config(run: PlannedRun, args: argparse.Namespace, device: torch.device, scratch: Path) -> RunConfig:
    """The study's run at the bench's shape, on ``device``: bf16 on a GPU, the CPU's native precision on a CPU."""
    train = run.config.train.model_copy(update={
        "batch_size": args.batch_size or run.config.train.batch_size,
        "max_length": args.max_length or run.config.train.max_length,
        "cpu": device.type == "cpu", "precision": "bf16" if device.type == "cuda" else "auto"})
    run_dir = scratch / run.run_id
    run_dir.mkdir(parents=True)  # the loop appends its log lines there
    return run.config.model_copy(update={"train": train, "output_dir": str(run_dir)})


def synthetic_split(kind: TaskKind, examples: int, length: int, hf: Any, generator: torch.Generator) -> EncodedSplit:
    """``examples`` of ``kind`` whose every row is ``length`` ids drawn from the vocabulary, never the padding id."""
    def rows() -> list[list[int]]:
        ids = torch.randint(0, hf.vocab_size - 1, (examples, length), generator=generator, device="cpu")
        return (ids + (ids >= pad_id(hf)).long()).tolist()

    if kind is TaskKind.RETRIEVAL:
        return EncodedSplit(kind, rows(), pair_ids=rows())
    return EncodedSplit(kind, rows(), labels=[i % 2 for i in range(examples)])


def build(config: RunConfig, hf: Any, steps: int) -> Assembled:
    """The run's model on a random backbone of ``hf``'s size, on the current default device, with ``steps`` steps
    of synthetic training data (round robin: one batch of every task per step)."""
    tasks = load_tasks(config, with_data=False)
    generator = torch.Generator().manual_seed(config.train.seed)
    examples, length = steps * config.train.batch_size, config.train.max_length
    encoded = {name: {split: synthetic_split(data.spec.kind, examples if split == "train" else 0, length, hf,
                                             generator) for split in SPLITS} for name, data in tasks.items()}
    backbone = random_backbone(hf, IdsOnly(pad_id(hf)), config.model, config.attention_dropout)
    return assemble(config, tasks, backbone=backbone, encoded=encoded)


def training_rows(built: Assembled) -> list[list[int]]:
    """Every row the encoder reads in training: each input of each task's training examples."""
    return [row for splits in built.encoded.values() for i in range(len(splits["train"]))
            for second in ((False, True) if splits["train"].two_inputs else (False,))
            for row in splits["train"].rows(i, second)]


def step_work(built: Assembled, batch_size: int) -> tuple[int, int]:
    """Padded tokens and attention cells of one training step: a batch of every task (the synthetic batches are
    all alike)."""
    batches = [collate(splits["train"], list(range(batch_size)), built.pad_id) for splits in built.encoded.values()]
    return sum(b.padded_tokens for b in batches), sum(b.attention_cells for b in batches)


def protocol_steps(config: RunConfig) -> dict[str, Any]:
    """The paper-gpu protocol's training steps at ``config``'s batch size: the plan mtpeft makes for its data (not
    bucketed by length: every row is as long as the others, and bucketing 250,000 of them takes a while)."""
    sizes = {task.name: [config.train.max_length] * PROTOCOL_TRAIN_SIZES[task.name] for task in config.tasks}
    per_epoch = len(epoch_plan(sizes, config.train.batch_size, config.sampling.strategy, config.sampling.temperature,
                               config.train.seed, 0, bucket=False))
    return {"config": "configs/paper-gpu.yaml", "train_sizes": PROTOCOL_TRAIN_SIZES,
            "sampling": config.sampling.strategy, "batch_size": config.train.batch_size,
            "max_length": config.train.max_length, "epochs": config.train.epochs, "steps_per_epoch": per_epoch,
            "steps": config.train.epochs * per_epoch,
            "counted": "training steps only (no evaluation, no early stop), every row at max_length: an upper bound"}


def training_flops(model: FlopModel, tokens: int, cells: int, causal: bool) -> int:
    return model.training(tokens, attended_pairs(tokens, cells, causal))["total"]


def measure_mtpeft(config: RunConfig, built: Assembled, flops: FlopModel, warmup: int,
                   device: torch.device) -> dict[str, Any]:
    """Train every step of ``built``'s data through mtpeft's training step; time those after ``warmup``."""
    unwritten = RunDirectory(config.run_dir(), config.run_dir())  # the bench never claims it nor writes there
    session = open_session(config, dump_config(config), unwritten, make_accelerator(config), built)
    plan = session.whole_plan(0)
    reset_peak_memory(device)
    for step in plan[:warmup]:
        train_step(session, step)
    session.counters = TrainCounters()
    synchronize(device)
    start = time.perf_counter()
    for step in plan[warmup:]:
        train_step(session, step)
    synchronize(device)
    seconds = time.perf_counter() - start
    done = session.counters
    return {"system": "mtpeft", "precision": session.accelerator.mixed_precision, "steps": len(plan) - warmup,
            "examples": done.examples, "tokens": done.padded_tokens, "seconds": seconds,
            "flops": training_flops(flops, done.padded_tokens, done.attention_cells, built.model.causal),
            "peak_memory_bytes": peak_memory(device),
            "parameters": count_parameters(built.model.encoder, [built.model.heads, built.weighting],
                                           built.method).as_dict()}


def sequence_classifier(hf: Any, family: str) -> nn.Module:
    """The plain two-class classifier of ``hf``'s architecture, with random weights, on the default device."""
    from transformers import AutoModelForSequenceClassification, T5EncoderModel

    if family == "t5":
        return EncoderClassifier(T5EncoderModel(hf), hf.d_model)
    hf = copy.deepcopy(hf)
    hf.num_labels, hf.pad_token_id = 2, pad_id(hf)  # decoders pool their last token before the padding
    return AutoModelForSequenceClassification.from_config(hf)


def measure_trainer(config: RunConfig, rows: list[list[int]], hf: Any, backbone: Any, steps: int, warmup: int,
                    device: torch.device, precision: str) -> dict[str, Any]:
    """``rows`` (those mtpeft trained in ``steps`` steps) as one LoRA sequence classifier trained by the Trainer at
    the same batch size, timed after the steps that hold the rows of mtpeft's ``warmup`` steps."""
    from transformers import default_data_collator

    batch, lora = config.train.batch_size, config.method_args
    with torch.device(device):
        model = with_lora(sequence_classifier(hf, backbone.family), backbone.family, lora["r"], lora["alpha"])
    flops = flop_model(model, hf)
    data = [{"input_ids": row, "attention_mask": [1] * len(row), "labels": i % 2} for i, row in enumerate(rows)]
    clock = StepClock(device)
    trainer = plain_trainer(model, data, default_data_collator, config, cpu=device.type == "cpu",
                            bf16=precision == "bf16", max_steps=len(rows) // batch, callbacks=[clock])
    reset_peak_memory(device)
    trainer.train()
    skipped = warmup * (len(rows) // steps) // batch
    timed_steps = len(clock.ends) - skipped
    examples, length = timed_steps * batch, len(rows[0])  # the Trainer shuffles them, and every row is as long
    tokens = examples * length
    return {"system": "trainer+peft", "precision": precision, "steps": timed_steps, "examples": examples,
            "tokens": tokens, "seconds": clock.ends[-1] - clock.ends[skipped - 1],
            "flops": training_flops(flops, tokens, examples * length**2, backbone.is_decoder),
            "peak_memory_bytes": peak_memory(device)}


def with_rates(row: dict[str, Any], peak_tflops: float, protocol_tokens: int) -> dict[str, Any]:
    tokens_per_s = row["tokens"] / row["seconds"]
    tflop_per_s = row["flops"] / row["seconds"] / 1e12
    return {**row, "tokens_per_s": tokens_per_s, "tflop_per_s": tflop_per_s, "share_of_peak": tflop_per_s / peak_tflops,
            "projected_protocol_hours": protocol_tokens / tokens_per_s / 3600}


def listed_peak(name: str) -> float | None:
    return next((tflops for key, tflops in GPU_BF16_PEAKS if key in name), None)


def device_peak(device: torch.device, precision: str, matmul_size: int) -> dict[str, Any]:
    """The device's name and bf16 peak: NVIDIA's figure where the GPU is listed, else the best of a few matmuls
    (on a CPU without native bf16, in the fp32 it trains in)."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_info()["model"]
    listed = listed_peak(name) if device.type == "cuda" else None
    if listed is not None:
        return {"name": name, "tflop_per_s": listed, "source": "NVIDIA datasheet, dense bf16"}
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    return {"name": name, "tflop_per_s": matmul_peak(dtype, matmul_size, device=device) / 1e3,
            "source": f"measured here: the best {matmul_size}x{matmul_size} {str(dtype).removeprefix('torch.')} matmul"}


def projection_gpu(args: argparse.Namespace, peak: dict[str, Any] | None, device: torch.device) -> dict[str, Any]:
    """The GPU the projection is for: ``--gpu``, else the GPU measured, else an H100 SXM."""
    if args.gpu is None and peak is not None and device.type == "cuda":
        return {"name": peak["name"], "tflop_per_s": peak["tflop_per_s"], "measured": True}
    name = args.gpu or PROJECTED_GPU
    return {"name": name, "tflop_per_s": listed_peak(name), "measured": False}


def project(flops: int, gpu: dict[str, Any], utilisation: float, measured: dict[str, Any] | None) -> dict[str, Any]:
    """Hours of ``flops`` on ``gpu`` at ``utilisation`` of its peak, and at the share ``measured`` reached there."""
    share = measured["share_of_peak"] if measured and gpu["measured"] else None
    return {"protocol_flops": flops, "gpu": gpu["name"], "peak_tflop_per_s": gpu["tflop_per_s"],
            "utilisation": utilisation, "hours": flops / (gpu["tflop_per_s"] * 1e12 * utilisation) / 3600,
            "measured_share": share,
            "hours_at_measured_share": flops / (gpu["tflop_per_s"] * 1e12 * share) / 3600 if share else None}


def reset_peak_memory(device: torch.device) -> None:
    if device.type != "cpu":
        torch.accelerator.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> int:
    """Peak bytes: allocated on the accelerator since the last reset, or the process's resident peak so far."""
    return peak_rss_bytes() if device.type == "cpu" else torch.accelerator.max_memory_allocated(device)


def release(device: torch.device) -> None:
    gc.collect()
    if device.type != "cpu":
        torch.accelerator.empty_cache()


def bench_run(run: PlannedRun, config: RunConfig, args: argparse.Namespace, device: torch.device,
              steps: dict[str, Any], peak: dict[str, Any] | None, gpu: dict[str, Any]) -> tuple[list[Any], Any]:
    """One backbone x method: its measured rows (mtpeft; and the Trainer for LoRA) and its projection."""
    hf, source = hf_config(run.model, args.tiny)
    with torch.device(device):
        built = build(config, hf, args.warmup + args.steps)
    flops = flop_model(built.model.encoding_module(), built.backbone.model.config)
    tokens, cells = step_work(built, config.train.batch_size)
    protocol_tokens = steps["steps"] * tokens
    protocol_flops = training_flops(flops, protocol_tokens, steps["steps"] * cells, built.model.causal)
    label = {"backbone": run.model, "method": run.method, "model_config": source}
    rows: list[dict[str, Any]] = []
    if peak is not None:
        rows.append(with_rates(measure_mtpeft(config, built, flops, args.warmup, device), peak["tflop_per_s"],
                               protocol_tokens))
    baseline = peak is not None and run.method == "lora"
    trainer_rows, backbone = (training_rows(built) if baseline else []), built.backbone
    del built
    release(device)
    if baseline:
        trained = measure_trainer(config, trainer_rows, hf, backbone, args.warmup + args.steps, args.warmup, device,
                                  rows[0]["precision"])
        rows.append(with_rates(trained, peak["tflop_per_s"], protocol_tokens))
        release(device)
    projection = {**label, **project(protocol_flops, gpu, args.utilisation, rows[0] if rows else None)}
    return [{**label, **row} for row in rows], projection


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    study = load_study(STUDY)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--tiny", action="store_true", help="the zoo's tiny models of the four architectures")
    parser.add_argument("--flops-only", action="store_true", help="the projection alone: no training, no timing")
    parser.add_argument("--backbones", nargs="+", choices=study.axes.model, help="default: all four")
    parser.add_argument("--methods", nargs="+", choices=study.axes.method, default=list(METHODS))
    parser.add_argument("--batch-size", type=int, help="examples per task batch (default: the study's, 16)")
    parser.add_argument("--max-length", type=int, help="tokens of every row (default: the study's, 512)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (at least 1)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps")
    parser.add_argument("--gpu", help=f"the GPU to project for (default: the one measured, else {PROJECTED_GPU}); "
                                      f"listed: {', '.join(key for key, _ in GPU_BF16_PEAKS)}")
    parser.add_argument("--utilisation", type=float, default=0.4, help="share of the GPU's peak the projection uses")
    parser.add_argument("--matmul-size", type=int, default=8192, help="matmul that measures an unlisted peak")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-gpu.json")
    args = parser.parse_args(argv)
    if args.warmup < 1 or args.steps < 1:
        parser.error("--warmup and --steps must be at least 1 (the clocks start after a warm-up step)")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here; --device cpu --tiny runs the same code on the tiny models, "
                     "--device cpu --flops-only gives the projection alone")
    if args.gpu is not None and listed_peak(args.gpu) is None:
        parser.error(f"--gpu {args.gpu!r}: no bf16 peak listed; listed: {', '.join(k for k, _ in GPU_BF16_PEAKS)}")
    if not 0 < args.utilisation <= 1:
        parser.error(f"--utilisation {args.utilisation}: expected a share of the peak in (0, 1]")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    device = torch.device(args.device)
    precision = resolve_precision("bf16" if device.type == "cuda" else "auto", device)
    peak = None if args.flops_only else device_peak(device, precision, args.matmul_size)
    gpu = projection_gpu(args, peak, device)
    runs = paper_runs(args.backbones, args.methods)
    results, projection = [], []
    with tempfile.TemporaryDirectory() as scratch:
        configs = [bench_config(run, args, device, Path(scratch)) for run in runs]
        steps = protocol_steps(configs[0])
        for run, config in zip(runs, configs, strict=True):
            rows, projected = bench_run(run, config, args, device, steps, peak, gpu)
            results.extend(rows)
            projection.append(projected)
            for row in rows:
                print(f"{row['backbone']:38s} {row['method']:8s} {row['system']:12s} {row['tokens_per_s']:9.0f} "
                      f"tokens/s {row['tflop_per_s']:8.2f} TFLOP/s ({row['share_of_peak']:.1%} of peak), peak "
                      f"memory {row['peak_memory_bytes'] / 2**30:.1f} GiB; protocol "
                      f"{row['projected_protocol_hours']:.1f} h")
            print(f"{run.model:38s} {run.method:8s} protocol {projected['protocol_flops']:.3g} FLOPs: "
                  f"{projected['hours']:.1f} h at {args.utilisation:.0%} of {gpu['name']}")
    report = {"command": " ".join(["python", "bench/gpu.py", *(sys.argv[1:] if argv is None else argv)]),
              "measured": peak is not None, "tiny": args.tiny, "device": {"type": device.type, **(peak or {})},
              "precision": precision, "warmup_steps": args.warmup, "timed_steps": args.steps, "protocol": steps,
              "peak_memory": "peak bytes allocated by PyTorch on the GPU during each run" if device.type == "cuda"
                             else "the process's peak resident memory so far (not per run) on a CPU",
              "results": results, "projection": projection, "packages": package_versions(), "cpu": cpu_info()}
    write_json(args.out, report)
    print(f"written to {args.out}")
    return report


if __name__ == "__main__":
    main()
