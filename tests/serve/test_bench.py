"""bench/serve.py runs end to end on the tiny run (its fairness row too), and its per-task-adapter baseline and ONNX
Runtime rows answer like the shared model."""

from __future__ import annotations

import importlib.util
import json
import sys

from tests.conftest import ROOT


def test_benchmark_runs_and_its_baseline_agrees(tiny_run, tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_serve", ROOT / "bench" / "serve.py")
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_serve", bench)  # dataclasses look their module up there
    spec.loader.exec_module(bench)
    out = tmp_path / "bench.json"
    report = bench.main(["--run", str(tiny_run), "--requests", "8", "--items", "3", "--concurrency", "2",
                         "--rounds", "2", "--warmup", "1", "--small-requests", "3", "--large-items", "2",
                         "--large-chars", "3000", "--out", str(out)])
    assert json.loads(out.read_text()) == report
    results = report["results"]
    assert set(results) == {"shared", "switched", "merged", "onnx", "onnx-int8"}
    for row in results.values():
        assert row["requests"] == 8 and row["items"] == 24 and row["items_per_s"] > 0
        assert row["latency_p99_ms"] >= row["latency_p50_ms"] > 0
    # the baseline runs one backbone pass per task in a batch; the shared model one per batch
    assert results["switched"]["backbone_passes"] >= results["shared"]["backbone_passes"]
    assert results["switched"]["backbone_passes"] > results["switched"]["batches"]
    differences = report["max_abs_probability_difference_vs_shared"]
    assert max(v for k, v in differences.items() if k != "onnx-int8") < 1e-4  # fp32 run: copies agree
    assert set(report["onnx_vs_shared_items_per_s"]) == {"onnx", "onnx-int8"}
    fair = report["small_beside_large"]
    assert fair["small_requests"] == 3 and fair["large_items"] == 2 and fair["large_chars_per_text"] == 3000
    assert fair["large_requests_answered"] >= 1
    for row in (fair["alone"], fair["beside_large"]):
        assert row["latency_p99_ms"] >= row["latency_p50_ms"] > 0
