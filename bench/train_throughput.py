"""Benchmark: `mtpeft train` against a plain `transformers.Trainer` + `peft` LoRA baseline, same data.

Both train LoRA (r=16, alpha=16 on the attention query/value projections) on the SAME token sequences:
the paper's classification tasks (vulnerability, clone, flakiness) read from ../shared/datasets with
their real length distribution, tokenised and truncated once by mtpeft. The baseline is what a user
writes with the Transformers docs: `AutoModelForSequenceClassification` + `get_peft_model`, the
Trainer's default collator (dynamic padding to the longest sequence of each shuffled batch), bf16
autocast where the CPU has it. mtpeft trains the same examples as a three-task round-robin run.

The two alternate (`--rounds`), so load that comes and goes is shared, and every run starts in a fresh
process: a setting one of them makes for the whole process (mtpeft keeps freed memory, see
`mtpeft.train.allocator`) does not reach the other. Reported per run: real tokens/s
(padding excluded), examples/s, and for mtpeft the analytic training GFLOP/s (`ledger.json`) and its
share of this machine's bf16 matmul peak, measured here on 4096x4096 matrices.

Usage:
    python bench/train_throughput.py --model minilm
    python bench/train_throughput.py --model smollm2-135m --per-task 32
    python bench/train_throughput.py --model minilm --set attention_dropout=0   # mtpeft overrides
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

from mtpeft.config import load_config
from mtpeft.io import read_json, write_json
from mtpeft.ledger.ledger import cpu_info
from mtpeft.run.build import assemble
from mtpeft.train import train

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("vulnerability", "clone", "flakiness")
LORA = {"r": 16, "alpha": 16}


def matmul_peak(dtype: torch.dtype, size: int = 4096, repeats: int = 5, device: str | torch.device = "cpu") -> float:
    """GFLOP/s of the best of ``repeats`` square matmuls on ``device``."""
    device = torch.device(device)
    a, b = (torch.randn(size, size, dtype=dtype, device=device) for _ in range(2))
    a @ b  # warm up
    best = min(_timed(lambda: a @ b, device) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (an accelerator runs it asynchronously), so that a clock read next
    times it; nothing to wait for on the CPU."""
    if device.type != "cpu":
        torch.accelerator.synchronize(device)


def _timed(fn: Any, device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def run_config(model: str, per_task: int, batch_size: int, max_length: int, out: Path, extra: list[str]) -> Any:
    overrides = [f"model={model}", "method=lora", f"method_args={json.dumps(LORA)}", "train.epochs=1",
                 f"train.batch_size={batch_size}", f"train.max_length={max_length}", "train.warmup_ratio=0",
                 f"output_dir={out}", "sampling.strategy=round_robin", *extra]
    config = load_config(ROOT / "configs" / "paper-tasks.yaml", overrides)
    tasks = [t.model_copy(update={"max_examples": {"train": per_task, "validation": 16, "test": 16}})
             for t in config.tasks if t.name in TASKS]
    return config.model_copy(update={"tasks": tasks})


def bench_mtpeft(config: Any) -> dict[str, float]:
    run_dir = train(config, overwrite=True, progress=False)
    info = read_json(run_dir / "ledger.json")["train_info"]
    return {"seconds": info["train_time_s"], "real_tokens": info["real_tokens"], "examples": info["examples"],
            "padded_tokens": info["padded_tokens"], "gflop_per_s": info["flops"]["achieved_gflop_per_s"]}


def bench_trainer(config: Any) -> dict[str, float]:
    from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding

    built = assemble(config)  # the same token ids mtpeft trains on
    ids = [seq for t in TASKS for seq in built.encoded[t]["train"].ids]
    labels = [int(y) for t in TASKS for y in built.encoded[t]["train"].labels]
    model = AutoModelForSequenceClassification.from_pretrained(built.backbone.source, num_labels=2)
    model.config.pad_token_id = built.pad_id
    model = with_lora(model, built.backbone.family, LORA["r"], LORA["alpha"])
    data = [{"input_ids": seq, "attention_mask": [1] * len(seq), "labels": y}
            for seq, y in zip(ids, labels, strict=True)]
    trainer = plain_trainer(model, data, DataCollatorWithPadding(built.backbone.tokenizer), config, cpu=True,
                            bf16=_bf16())
    seconds = trainer.train().metrics["train_runtime"]
    return {"seconds": seconds, "real_tokens": sum(map(len, ids)), "examples": len(ids)}


def with_lora(model: Any, family: str, r: int, alpha: float) -> Any:
    """``model`` with peft's LoRA on the query/value projections mtpeft's LoRA adapts by default, as a
    sequence classifier (its head trains in full)."""
    from peft import LoraConfig, TaskType, get_peft_model

    from mtpeft.methods import METHODS

    targets = METHODS.get("lora").default_targets[family]
    return get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=r, lora_alpha=alpha, target_modules=targets))


def plain_trainer(model: Any, data: list[dict[str, Any]], collator: Any, config: Any, cpu: bool, bf16: bool,
                  max_steps: int = -1, callbacks: list[Any] | None = None) -> Any:
    """The ``Trainer`` a user writes with the Transformers docs: ``config``'s batch size, learning rate and seed,
    one epoch (or ``max_steps``), nothing saved or logged."""
    from transformers import Trainer, TrainingArguments

    args = TrainingArguments(output_dir=str(config.run_dir().parent / "trainer"),
                             per_device_train_batch_size=config.train.batch_size, num_train_epochs=1,
                             max_steps=max_steps, learning_rate=config.train.lr, bf16=bf16, use_cpu=cpu,
                             report_to=[], save_strategy="no", logging_strategy="no", seed=config.train.seed,
                             dataloader_num_workers=0, disable_tqdm=True)
    return Trainer(model=model, args=args, train_dataset=data, data_collator=collator, callbacks=callbacks)


def in_fresh_process(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` in a newly spawned interpreter, so process-wide settings start from the defaults."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def _bf16() -> bool:
    from mtpeft.run.device import resolve_precision

    return resolve_precision("auto", torch.device("cpu")) == "bf16"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--per-task", type=int, default=160, help="training examples per task")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="an mtpeft config override, e.g. attention_dropout=0 (repeatable)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-train-throughput.json")
    args = parser.parse_args()

    # the peak of the precision the runs use: bf16 is timed only where the CPU runs it natively (emulated bf16
    # matmuls run at under 1 GFLOP/s, and timing them took a quarter of an hour on an AVX2-only machine)
    precision = "bf16" if _bf16() else "fp32"
    peaks = {"fp32": matmul_peak(torch.float32)}
    if precision == "bf16":
        peaks["bf16"] = matmul_peak(torch.bfloat16)
    print("matmul peak: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items())
          + f"; runs train in {precision}")
    results: dict[str, list[dict[str, float]]] = {"mtpeft": [], "trainer": []}
    with tempfile.TemporaryDirectory() as scratch:
        config = run_config(args.model, args.per_task, args.batch_size, args.max_length, Path(scratch) / "run",
                            args.overrides)
        for round_ in range(args.rounds):
            for name, fn in (("mtpeft", bench_mtpeft), ("trainer", bench_trainer)):
                result = in_fresh_process(fn, config)
                result["tokens_per_s"] = result["real_tokens"] / result["seconds"]
                result["examples_per_s"] = result["examples"] / result["seconds"]
                results[name].append(result)
                print(f"round {round_ + 1} {name:8s} {result['tokens_per_s']:8.0f} real tokens/s "
                      f"{result['examples_per_s']:6.2f} examples/s ({result['real_tokens']:,} tokens in "
                      f"{result['seconds']:.1f} s)")
    median = {name: statistics.median(r["tokens_per_s"] for r in runs) for name, runs in results.items()}
    gflops = statistics.median(r["gflop_per_s"] for r in results["mtpeft"])
    summary = {"model": args.model, "per_task": args.per_task, "batch_size": args.batch_size,
               "mtpeft_overrides": args.overrides,
               "max_length": args.max_length, "matmul_peak_gflop_per_s": peaks, "runs": results,
               "median_tokens_per_s": median, "ratio_mtpeft_over_trainer": median["mtpeft"] / median["trainer"],
               "precision": precision, "mtpeft_gflop_per_s": gflops, "mtpeft_share_of_peak": gflops / peaks[precision],
               "cpu": cpu_info(), "torch_threads": torch.get_num_threads()}
    write_json(args.out, summary)
    print(f"median real tokens/s: mtpeft {median['mtpeft']:.0f}, trainer {median['trainer']:.0f} "
          f"(ratio {summary['ratio_mtpeft_over_trainer']:.2f}x); mtpeft {gflops:.0f} GFLOP/s = "
          f"{100 * summary['mtpeft_share_of_peak']:.0f}% of the {precision} matmul peak; written to {args.out}")


if __name__ == "__main__":
    main()
