"""Benchmark: the distributed path on one CPU machine, 2 processes x 1 thread (torchrun, gloo) against 1 process
x 2 threads, on the same data with the same global batch.

Both train the same LoRA run over the paper's three classification tasks (the data and settings of
`bench/train_throughput.py`), one epoch; the two-process run gives each process half of the global batch. Reported
per run: real tokens/s (padding excluded; the ledger sums every process's tokens once) over training time. On a
CPU this shows what the distributed path costs (gradient all-reduce over gloo, a model copy per process, two
processes' memory), not a speed-up: no target is set. The two alternate (`--rounds`) so that load which comes and
goes is shared.

Usage:
    python bench/distributed.py --model minilm
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from train_throughput import ROOT, run_config

from mtpeft.config import dump_config
from mtpeft.io import read_json, write_json, write_text
from mtpeft.ledger.ledger import cpu_info


def launch(config_path: Path, processes: int, threads: int) -> dict[str, float]:
    """Train ``config_path`` in ``processes`` processes of ``threads`` threads each; the ledger's numbers."""
    command = [sys.executable, "-m", "mtpeft", "train", str(config_path), "--overwrite"]
    if processes > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
                   *command[1:]]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    ledger = read_json(config_path.with_suffix("") / "ledger.json")
    info = ledger["train_info"]
    return {"processes": ledger["run_info"]["processes"], "threads": threads, "seconds": info["train_time_s"],
            "wall_s": round(wall, 1), "real_tokens": info["real_tokens"], "examples": info["examples"],
            "optimizer_steps": info["optimizer_steps"], "peak_rss_bytes": info["peak_rss_bytes"],
            "tokens_per_s": info["real_tokens"] / info["train_time_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--per-task", type=int, default=96, help="training examples per task")
    parser.add_argument("--batch-size", type=int, default=16, help="global batch (each of 2 processes takes half)")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-distributed.json")
    args = parser.parse_args()
    if args.batch_size % 2:
        parser.error("--batch-size must be even (two processes take half each)")

    settings = {"1x2": (1, 2, args.batch_size), "2x1": (2, 1, args.batch_size // 2)}  # processes, threads, batch
    results: dict[str, list[dict[str, float]]] = {name: [] for name in settings}
    with tempfile.TemporaryDirectory() as scratch:
        paths = {}
        for name, (_, _, batch) in settings.items():
            paths[name] = Path(scratch) / f"{name}.yaml"
            config = run_config(args.model, args.per_task, batch, args.max_length, Path(scratch) / name, [])
            write_text(paths[name], dump_config(config))
        for round_ in range(args.rounds):
            for name, (processes, threads, _) in settings.items():
                result = launch(paths[name], processes, threads)
                results[name].append(result)
                print(f"round {round_ + 1} {processes} process(es) x {threads} thread(s): "
                      f"{result['tokens_per_s']:7.0f} real tokens/s ({result['real_tokens']:,} tokens, "
                      f"{result['optimizer_steps']} steps, {result['seconds']:.1f} s training, "
                      f"{result['wall_s']:.0f} s wall, peak RSS {result['peak_rss_bytes'] / 2**30:.2f} GiB "
                      "per process)")
    median = {name: statistics.median(r["tokens_per_s"] for r in runs) for name, runs in results.items()}
    summary = {"model": args.model, "per_task": args.per_task, "global_batch": args.batch_size,
               "max_length": args.max_length, "runs": results, "median_tokens_per_s": median,
               "ratio_2x1_over_1x2": median["2x1"] / median["1x2"], "cpu": cpu_info()}
    write_json(args.out, summary)
    print(f"median real tokens/s: 2 processes x 1 thread {median['2x1']:.0f}, 1 process x 2 threads "
          f"{median['1x2']:.0f} (ratio {summary['ratio_2x1_over_1x2']:.2f}); written to {args.out}")


if __name__ == "__main__":
    main()
