"""Benchmark: mixed-task batches in ONE shared backbone pass vs per-task adapters with switching.

Both deployments run behind the same real HTTP server (uvicorn on loopback, same dynamic batcher, same
limits), on the same backbone and the same requests, measured in the same process one after the other:

(a) shared   the run as `mtpeft serve` serves it: each merged batch is one backbone pass, whatever mix
             of tasks it holds; only the per-task heads differ.
(b) switched the deployment you get with one LoRA per task: the run's adapter is loaded once per task
             under the task's name (peft ``load_adapter``), each merged batch is split by task, and the
             active adapter is switched (``set_adapter``) before each group's own backbone pass.
(c) merged   (a) with the LoRA folded into the base weights (`mtpeft serve --merge`); one shared adapter
             can be merged, N per-task adapters cannot (short of N model copies).
(d) onnx, onnx-int8   (a) computed by ONNX Runtime from the run's export (`mtpeft serve --backend onnx` /
             `onnx-int8`; exported into RUN/export/onnx/ first where it is not there), fp32 and int8.

Every answer of (b), (c) and (d) is checked against (a) (the adapters are copies, so they must agree up to
autocast rounding; int8 differs by what quantisation costs). Needs a LoRA run (peft multi-adapter and merging).

Usage:
    python bench/serve.py                          # runs/quickstart, else trains runs/bench-serve (~1 min)
    python bench/serve.py --run runs/paper-tasks-lora --requests 64 --out runs/bench-serve-paper.json

Clients are closed-loop: ``--concurrency`` threads each send their share of the requests one after the
other; a request holds ``--items`` items of tasks drawn at random (seeded) from the run's test splits.
The three servers run side by side and take turns (``--rounds``), so background load that comes and
goes during the run is shared fairly.

Fairness row, "small requests beside a large one": the shared deployment answers ``--small-requests``
one-item requests sent one after another, first alone, then while another client keeps a large request in
flight (``--large-items`` items of ``--large-chars`` characters each: test-split code repeated; the default
is the 3.9 MB request that once held a small one for 17.5 s); p50/p99 latency of the small ones, both ways.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import requests
import torch

from mtpeft.config import load_config
from mtpeft.export import export_dir, export_run, onnx_backend
from mtpeft.ledger.ledger import package_versions
from mtpeft.run import TrainedRun, load_trained
from mtpeft.serve import BackgroundServer, Encoded, Limits, Predictor, create_app
from mtpeft.serve.schemas import input_fields, tasks_of
from mtpeft.tasks.spec import TaskKind
from mtpeft.train import train as run_training

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = Path("runs/quickstart")
FALLBACK = Path("runs/bench-serve")
# A small quickstart (about a minute on 2 cores) for machines without runs/quickstart.
FALLBACK_OVERRIDES = ["name=bench-serve", f"output_dir={FALLBACK}", "train.epochs=1",
                      *(f"tasks.{i}.max_examples={{train: 96, validation: 48, test: 64}}" for i in range(3))]


class SwitchedAdapters(Predictor):
    """Baseline: one LoRA copy per task (peft multi-adapter); a batch runs as one backbone pass per task
    in it, with ``set_adapter`` between the groups."""

    def __init__(self, trained: TrainedRun, adapter_dir: Path) -> None:
        super().__init__(trained)
        for task in self.specs:
            self.model.encoder.load_adapter(str(adapter_dir), adapter_name=task)
        self.model.to(self.device).eval()
        self.passes = 0

    def forward(self, items: list[Encoded]) -> list[torch.Tensor]:
        out: dict[int, torch.Tensor] = {}
        for task in dict.fromkeys(item.task for item in items):
            rows = [i for i, item in enumerate(items) if item.task == task]
            self.model.encoder.set_adapter(task)
            self.passes += 1
            out.update(zip(rows, super().forward([items[i] for i in rows]), strict=True))
        return [out[i] for i in range(len(items))]


def resolve_run(run: Path | None) -> Path:
    """``--run``, else runs/quickstart, else a small run trained once into runs/bench-serve."""
    if run is not None:
        return run
    for candidate in (QUICKSTART, FALLBACK):
        if (candidate / "heads.json").is_file():
            return candidate
    print(f"no {QUICKSTART}: training a small run into {FALLBACK} (about a minute)", file=sys.stderr)
    return run_training(load_config(ROOT / "configs" / "quickstart.yaml", FALLBACK_OVERRIDES), progress=False)


def onnx_deployments(run: Path) -> dict[str, Predictor]:
    """The run served by ONNX Runtime from its export, fp32 and int8 (exported first where missing)."""
    if not (export_dir(run, "onnx") / "model.int8.onnx").is_file():
        export_run(run, "onnx", quantize="int8")
    return {name: Predictor(load_trained(run, with_data=False), onnx=onnx_backend(run, name))
            for name in ("onnx", "onnx-int8")}


def make_requests(trained: TrainedRun, count: int, items: int, seed: int) -> list[dict[str, Any]]:
    """``count`` request bodies of ``items`` items each, tasks mixed at random, inputs from the test splits."""
    rng = random.Random(seed)
    pools = {}
    for task in tasks_of({t: d.spec for t, d in trained.built.tasks.items()}, TaskKind.BINARY, TaskKind.PAIR):
        names = input_fields(trained.built.tasks[task].spec.kind)
        pools[task] = [dict(zip(names, (ex.text, ex.text_pair), strict=False))
                       for ex in trained.built.tasks[task].splits["test"]]
    tasks = sorted(pools)
    return [{"items": [{"task": (t := rng.choice(tasks)), **rng.choice(pools[t])} for _ in range(items)]}
            for _ in range(count)]


@dataclass
class Tally:
    """What one deployment did across rounds."""

    wall: float = 0.0
    latencies: list[float] = field(default_factory=list)
    answers: dict[int, list[float]] = field(default_factory=dict)
    items: int = 0
    batches: int = 0
    passes: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "requests": len(self.latencies), "items": self.items, "wall_s": round(self.wall, 3),
            "items_per_s": round(self.items / self.wall, 2),
            "requests_per_s": round(len(self.latencies) / self.wall, 2),
            "latency_p50_ms": percentile_ms(self.latencies, 50),
            "latency_p99_ms": percentile_ms(self.latencies, 99),
            "batches": self.batches, "backbone_passes": self.passes,
            "items_per_pass": round(self.items / max(self.passes, 1), 2),
        }


def percentile_ms(latencies: list[float], q: float) -> float:
    return round(1000 * float(np.percentile(latencies, q)), 1)


def large_request(trained: TrainedRun, items: int, chars: int, seed: int) -> dict[str, Any]:
    """One request of ``items`` items whose texts are test-split inputs repeated to ``chars`` characters."""
    [body] = make_requests(trained, 1, items, seed)
    return {"items": [{name: value if name == "task" else stretch(value, chars) for name, value in item.items()}
                      for item in body["items"]]}


def stretch(text: str, chars: int) -> str:
    return ((text + "\n") * (chars // (len(text) + 1) + 1))[:chars]


def timed_post(url: str, body: dict[str, Any]) -> float:
    start = time.perf_counter()
    requests.post(f"{url}/v1/predict", json=body, timeout=600).raise_for_status()
    return time.perf_counter() - start


def small_beside_large(url: str, small: list[dict[str, Any]], large: dict[str, Any]) -> dict[str, Any]:
    """Latencies of ``small`` sent one after another: alone, then while another client keeps ``large`` in flight."""
    alone = [timed_post(url, body) for body in small]
    stop, large_latencies = threading.Event(), []

    def keep_large_in_flight() -> None:
        while not stop.is_set():
            large_latencies.append(timed_post(url, large))

    with ThreadPoolExecutor(1) as pool:
        sender = pool.submit(keep_large_in_flight)
        while not large_latencies and not requests.get(f"{url}/healthz", timeout=60).json()["queued"]:
            time.sleep(0.005)  # until the large request's items wait for the model
        beside = [timed_post(url, body) for body in small]
        stop.set()
        sender.result()
    return {
        "small_requests": len(small), "large_items": len(large["items"]),
        "large_chars_per_text": max(len(v) for item in large["items"] for k, v in item.items() if k != "task"),
        "alone": {"latency_p50_ms": percentile_ms(alone, 50), "latency_p99_ms": percentile_ms(alone, 99)},
        "beside_large": {"latency_p50_ms": percentile_ms(beside, 50), "latency_p99_ms": percentile_ms(beside, 99)},
        "large_requests_answered": len(large_latencies),
        "large_latency_p50_ms": percentile_ms(large_latencies, 50),
    }


def send_round(url: str, predictor: Predictor, bodies: dict[int, dict[str, Any]], concurrency: int,
               tally: Tally) -> None:
    """Send ``bodies`` from ``concurrency`` closed-loop clients and add timings and answers to ``tally``."""
    def send(index: int) -> tuple[int, float, list[float]]:
        start = time.perf_counter()
        response = requests.post(f"{url}/v1/predict", json=bodies[index], timeout=600)
        response.raise_for_status()
        return index, time.perf_counter() - start, [r["probability"] for r in response.json()["results"]]

    before = requests.get(f"{url}/healthz", timeout=60).json()
    passes = getattr(predictor, "passes", None)
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        done = list(pool.map(send, bodies))
    tally.wall += time.perf_counter() - start
    after = requests.get(f"{url}/healthz", timeout=60).json()
    tally.latencies += [latency for _, latency, _ in done]
    tally.answers.update((index, probs) for index, _, probs in done)
    tally.items += after["items"] - before["items"]
    tally.batches += after["batches"] - before["batches"]
    tally.passes += (predictor.passes - passes) if passes is not None else after["batches"] - before["batches"]


def measure(deployments: dict[str, Predictor], warmup: list[dict[str, Any]], bodies: list[dict[str, Any]],
            limits: Limits, concurrency: int, rounds: int) -> dict[str, Tally]:
    """Serve every deployment at once and send them the same requests, round by round.

    Each round sends its share of the requests to each deployment in turn (the order rotates per round),
    so a change in background load over the run hits every deployment alike.
    """
    tallies = {name: Tally() for name in deployments}
    with ExitStack() as stack:
        urls = {name: stack.enter_context(BackgroundServer(create_app(p, limits))) for name, p in deployments.items()}
        for url in urls.values():
            for body in warmup:  # the first passes allocate memory; not counted
                requests.post(f"{url}/v1/predict", json=body, timeout=600).raise_for_status()
        names = list(deployments)
        for r in range(rounds):
            share = {i: bodies[i] for i in range(r, len(bodies), rounds)}
            for name in names[r % len(names):] + names[:r % len(names)]:
                send_round(urls[name], deployments[name], share, concurrency, tallies[name])
    return tallies


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="Run directory (default: runs/quickstart, else a small run).")
    parser.add_argument("--requests", type=int, default=96, help="Requests per deployment.")
    parser.add_argument("--items", type=int, default=4, help="Items per request.")
    parser.add_argument("--concurrency", type=int, default=8, help="Closed-loop client threads.")
    parser.add_argument("--max-batch", type=int, default=32, help="Items per merged batch (both deployments).")
    parser.add_argument("--max-wait-ms", type=float, default=5.0, help="Batcher wait (both deployments).")
    parser.add_argument("--warmup", type=int, default=4, help="Requests sent first and not counted.")
    parser.add_argument("--rounds", type=int, default=4, help="Deployments take turns this many times.")
    parser.add_argument("--small-requests", type=int, default=24, help="One-item requests of the fairness row.")
    parser.add_argument("--large-items", type=int, default=20, help="Items of the fairness row's large request.")
    parser.add_argument("--large-chars", type=int, default=190_000, help="Characters per text of the large request.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-serve.json"), help="Results JSON.")
    args = parser.parse_args(argv)

    run = resolve_run(args.run)
    trained = load_trained(run)  # with data: the requests come from the test splits
    bodies = make_requests(trained, args.warmup + args.requests, args.items, args.seed)
    warmup, bodies = bodies[:args.warmup], bodies[args.warmup:]
    limits = Limits(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms)
    shared = Predictor(trained)
    deployments = {"shared": shared, "switched": SwitchedAdapters(load_trained(run, with_data=False), run / "adapter"),
                   "merged": Predictor(load_trained(run, with_data=False), merge=True), **onnx_deployments(run)}
    load_before = os.getloadavg()[0]
    tallies = measure(deployments, warmup, bodies, limits, args.concurrency, args.rounds)
    results = {name: tally.summary() for name, tally in tallies.items()}
    large = large_request(trained, args.large_items, args.large_chars, args.seed)
    # the body limit would refuse the large request before it reached the model; it bounds nothing measured here
    fair_limits = replace(limits, max_items=max(limits.max_items, args.large_items),
                          max_body_bytes=max(limits.max_body_bytes, len(json.dumps(large)) + 1024))
    with BackgroundServer(create_app(shared, fair_limits)) as url:
        fairness = small_beside_large(url, make_requests(trained, args.small_requests, 1, args.seed + 1), large)
    reference = tallies["shared"].answers
    diff = {name: float(max(np.max(np.abs(np.subtract(t.answers[i], reference[i]))) for i in reference))
            for name, t in tallies.items() if name != "shared"}
    report = {
        "run": str(run), "model": trained.config.model, "max_length": trained.config.train.max_length,
        "autocast": shared.precision,
        "tasks": sorted(shared.specs), "requests": args.requests, "items_per_request": args.items,
        "concurrency": args.concurrency, "max_batch": args.max_batch, "max_wait_ms": args.max_wait_ms,
        "rounds": args.rounds,
        "results": results, "max_abs_probability_difference_vs_shared": diff, "small_beside_large": fairness,
        "speedup_items_per_s": round(results["shared"]["items_per_s"] / results["switched"]["items_per_s"], 2),
        "onnx_vs_shared_items_per_s": {name: round(results[name]["items_per_s"] / results["shared"]["items_per_s"], 2)
                                       for name in ("onnx", "onnx-int8")},
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
                    # other work on the machine skews the numbers; the 1-minute load average says how much
                    "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)]},
        "versions": package_versions(),
    }
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return report


def print_table(report: dict[str, Any]) -> None:
    print(f"run {report['run']} ({report['model']}, max_length {report['max_length']}, autocast {report['autocast']}); "
          f"{report['requests']} requests x {report['items_per_request']} items, {report['concurrency']} clients, "
          f"max batch {report['max_batch']}, max wait {report['max_wait_ms']} ms; "
          f"load average {report['machine']['load_average_1m']} on {report['machine']['cpus']} CPUs")
    columns = ["items_per_s", "requests_per_s", "latency_p50_ms", "latency_p99_ms", "backbone_passes",
               "items_per_pass"]
    print(f"{'deployment':<10} " + " ".join(f"{c:>15}" for c in columns))
    for name, row in report["results"].items():
        print(f"{name:<10} " + " ".join(f"{row[c]:>15}" for c in columns))
    diffs = ", ".join(f"{k} {v:.1e}" for k, v in report["max_abs_probability_difference_vs_shared"].items())
    print(f"shared / switched throughput: {report['speedup_items_per_s']}x; max |probability - shared's|: {diffs}")
    print("ONNX Runtime / shared throughput: " + ", ".join(f"{name} {ratio}x" for name, ratio in
                                                           report["onnx_vs_shared_items_per_s"].items()))
    fair = report["small_beside_large"]
    print(f"small requests beside a large one ({fair['large_items']} items x {fair['large_chars_per_text']} "
          f"characters), shared, {fair['small_requests']} one-item requests: "
          + "; ".join(f"{how} p50 {row['latency_p50_ms']} ms, p99 {row['latency_p99_ms']} ms"
                      for how, row in (("alone", fair["alone"]), ("beside", fair["beside_large"])))
          + f" ({fair['large_requests_answered']} large requests answered meanwhile)")


if __name__ == "__main__":
    main()
