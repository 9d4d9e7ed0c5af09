"""The ONNX export answers every task as `mtpeft predict` does: read with plain ONNX Runtime by its manifest, and
through `--backend onnx` in predict, eval and the HTTP service; failures leave nothing behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from fastapi.testclient import TestClient
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer
from typer.testing import CliRunner

from mtpeft.cli import app
from mtpeft.errors import ConfigError, RunError
from mtpeft.export import export_run
from mtpeft.io import read_json
from mtpeft.run import evaluate_run
from mtpeft.serve import Predictor, create_app, predict_file
from mtpeft.serve.schemas import CodeInput, PairInput
from tests.conftest import write_jsonl
from tests.export.conftest import WINDOW_LENGTH
from tests.serve.conftest import binary_rows, pair_rows, search_rows

pytestmark = pytest.mark.slow


def predicted(run: Path, task: str, rows: list[dict], tmp_path: Path, backend: str, pool: Path | None = None):
    source, target = write_jsonl(tmp_path / f"{task}.in.jsonl", rows), tmp_path / f"{task}.{backend}.jsonl"
    predict_file(run, task, str(source), str(target), pool=None if pool is None else str(pool), backend=backend)
    return [json.loads(line) for line in target.read_text().splitlines()]


def test_plain_onnx_runtime_fed_by_the_manifest_equals_predict_on_every_task(tiny_run, onnx_dir, tmp_path):
    manifest = read_json(onnx_dir / "mtpeft-onnx.json")
    tasks = manifest["tasks"]
    assert {t: e["kind"] for t, e in tasks.items()} == {"overflow": "binary", "same": "pair", "find": "retrieval"}
    session = onnxruntime.InferenceSession(str(onnx_dir / "model.onnx"))
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask"]  # no windows, no siamese pairs
    tokenizer = AutoTokenizer.from_pretrained(onnx_dir)  # the tokenizer files beside the graph

    def run(output: str, *texts: list[str]) -> np.ndarray:
        batch = tokenizer(*texts, truncation="longest_first", max_length=manifest["max_length"], padding=True,
                          return_tensors="np")
        return session.run([output], {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]})[0]

    codes = [r["text"] for r in binary_rows(6)]
    logits = run(tasks["overflow"]["output"], codes)
    expected = predicted(tiny_run, "overflow", [{"code": c} for c in codes], tmp_path, "torch")
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), [r["probability"] for r in expected], atol=1e-4)
    threshold = tasks["overflow"]["threshold"]
    assert [int(p >= threshold) for p in 1 / (1 + np.exp(-logits))] == [r["label"] for r in expected]

    pairs = pair_rows(6)
    assert tasks["same"]["pair_encoding"] == "joint" and tasks["same"]["pair_separator"] == ""
    logits = run(tasks["same"]["output"], [p["a"] for p in pairs], [p["b"] for p in pairs])
    expected = predicted(tiny_run, "same", [{"code1": p["a"], "code2": p["b"]} for p in pairs], tmp_path, "torch")
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), [r["probability"] for r in expected], atol=1e-4)

    rows = search_rows(8)
    pool = write_jsonl(tmp_path / "pool.jsonl", [{"id": i, "code": r["code"]} for i, r in enumerate(rows)])
    queries = run(tasks["find"]["output"], [r["query"] for r in rows])
    codes = run(tasks["find"]["output"], [r["code"] for r in rows])
    scores = queries @ codes.T
    expected = predicted(tiny_run, "find", [{"query": r["query"]} for r in rows], tmp_path, "torch", pool)
    for row, hits in zip(scores, expected, strict=True):
        np.testing.assert_allclose(row[[h["id"] for h in hits["hits"]]], [h["score"] for h in hits["hits"]], atol=1e-4)


def test_predict_with_the_onnx_backend_equals_torch_on_every_task(tiny_run, onnx_dir, tmp_path):
    rows = search_rows(8)
    pool = write_jsonl(tmp_path / "pool.jsonl", [{"id": i, "code": r["code"]} for i, r in enumerate(rows)])
    cases = {"overflow": ([{"code": r["text"] * (1 + i % 9)} for i, r in enumerate(binary_rows(8))], None),
             "same": ([{"code1": r["a"], "code2": r["b"]} for r in pair_rows(8)], None),
             "find": ([{"query": r["query"]} for r in rows], pool)}
    for task, (inputs, pool_file) in cases.items():
        torch_rows = predicted(tiny_run, task, inputs, tmp_path, "torch", pool_file)
        onnx_rows = predicted(tiny_run, task, inputs, tmp_path, "onnx", pool_file)
        assert [r["truncated"] for r in onnx_rows] == [r["truncated"] for r in torch_rows]
        if pool_file is None:
            np.testing.assert_allclose([r["probability"] for r in onnx_rows], [r["probability"] for r in torch_rows],
                                       atol=1e-4)
            assert [r["label"] for r in onnx_rows] == [r["label"] for r in torch_rows]
        else:
            for a, b in zip(onnx_rows, torch_rows, strict=True):
                np.testing.assert_allclose([h["score"] for h in a["hits"]], [h["score"] for h in b["hits"]], atol=1e-4)
    assert any(r["truncated"] for r in predicted(tiny_run, "overflow", cases["overflow"][0], tmp_path, "onnx"))


def test_windows_and_siamese_pairs_answer_alike_in_one_mixed_pass(windowed_run):
    session = onnxruntime.InferenceSession(str(windowed_run / "export" / "onnx" / "model.onnx"))
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask", "windows", "pairs"]
    by_torch, by_onnx = Predictor.from_run(windowed_run), Predictor.from_run(windowed_run, backend="onnx")

    def items(predictor: Predictor) -> list:
        long = [CodeInput(code=r["text"] * (1 + i)) for i, r in enumerate(binary_rows(5))]
        pairs = [PairInput(code1=r["a"] * (1 + i % 3), code2=r["b"]) for i, r in enumerate(pair_rows(5))]
        found = predictor.encode("overflow", long) + predictor.encode("same", pairs)
        return [found[i] for i in (0, 5, 1, 6, 2, 7, 3, 8, 4, 9)]  # the tasks interleaved in one batch

    mixed = items(by_torch)
    assert max(len(rows) for item in mixed for rows in item.inputs) > 1  # windows, really
    for a, b in zip(by_torch.forward(mixed), by_onnx.forward(items(by_onnx)), strict=True):
        torch.testing.assert_close(torch.sigmoid(b), torch.sigmoid(a), atol=1e-4, rtol=0)
    codes = [r["code"] for r in search_rows(5)]
    torch.testing.assert_close(by_onnx.embed_pool(codes, 2)[0]["find"], by_torch.embed_pool(codes, 2)[0]["find"],
                               atol=1e-4, rtol=0)


def test_eval_with_the_onnx_backend_scores_every_task_as_torch_does(windowed_run):
    from mtpeft.export import onnx_backend

    by_torch = evaluate_run(windowed_run)
    by_onnx = evaluate_run(windowed_run, model=onnx_backend(windowed_run, "onnx"))
    for task, metrics in by_torch.tasks.items():
        scores = metrics.scores("test")
        assert scores and by_onnx.tasks[task].scores("test") == pytest.approx(scores, abs=1e-4), task


def test_int8_keeps_the_heads_in_fp32_and_its_metric_cost_is_measurable(tiny_run, onnx_dir):
    quantization = read_json(onnx_dir / "mtpeft-onnx.json")["quantization"]
    assert quantization["per_channel"] and quantization["quantized_nodes"] > 0
    graph = onnx.load(str(onnx_dir / "model.int8.onnx")).graph
    floats = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    assert {f"model.heads.{t}.net.0.weight" for t in ("overflow", "same")} | {"model.heads.find.proj.weight"} <= floats
    assert sum(n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for n in graph.node) == \
        quantization["quantized_nodes"]
    result = CliRunner().invoke(app, ["eval", str(tiny_run), "--backend", "onnx-int8", "--json"])
    assert result.exit_code == 0, result.output
    int8 = json.loads(result.output)["tasks"]
    assert set(int8) == {"overflow", "same", "find"} and all(0 <= s["test"]["mrr" if t == "find" else "f1"] <= 1
                                                            for t, s in int8.items())


def test_the_service_on_the_onnx_backend_has_the_same_api_and_refusals(tiny_run, onnx_dir):
    answers, tasks, refusals = {}, {}, {}
    for backend in ("torch", "onnx"):
        with TestClient(create_app(Predictor.from_run(tiny_run, backend=backend))) as client:
            ok = client.post("/v1/predict", json={"items": [{"task": "overflow", "code": "strcpy(b, s);"},
                                                            {"task": "same", "code1": "a", "code2": "b"}]})
            assert ok.status_code == 200
            answers[backend] = [r["probability"] for r in ok.json()["results"]]
            bad = client.post("/v1/predict", json={"items": [{"task": "overflow", "code1": "a"}]})
            missing = client.post("/v1/search", json={"task": "find", "index": "none", "query": "sort"})
            refusals[backend] = (bad.status_code, missing.status_code, missing.json())
            tasks[backend] = client.get("/v1/tasks").json()
    np.testing.assert_allclose(answers["onnx"], answers["torch"], atol=1e-4)
    assert tasks["onnx"] == tasks["torch"] and refusals["onnx"] == refusals["torch"]
    assert refusals["onnx"][:2] == (422, 404)


def test_an_export_that_no_longer_matches_its_run_is_refused(tiny_run, onnx_dir, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy)
    heads = load_file(str(copy / "heads.safetensors"))
    save_file({k: v + 1 if k.endswith("net.3.bias") else v for k, v in heads.items()}, str(copy / "heads.safetensors"))
    with pytest.raises(RunError, match="trained again after its ONNX export"):
        Predictor.from_run(copy, backend="onnx")
    shutil.rmtree(copy / "export")
    with pytest.raises(RunError, match="mtpeft export RUN --format onnx"):
        Predictor.from_run(copy, backend="onnx")
    with pytest.raises(ConfigError, match="only for --backend torch"):
        Predictor.from_run(tiny_run, backend="onnx", merge=True)


@pytest.mark.parametrize(("args", "expected"), [
    (["--format", "tflite"], "--format 'tflite': expected one of onnx, sentence-transformers, peft"),
    (["--format", "peft"], "--format peft: needs --task"),
    (["--format", "onnx", "--task", "find"], "--task: the ONNX graph holds every task"),
    (["--format", "sentence-transformers", "--task", "find", "--quantize", "int8"], "with --format onnx"),
    (["--format", "onnx", "--quantize", "int4"], "--quantize 'int4': expected int8"),
    (["--format", "peft", "--task", "nope"], "--task 'nope': the run has tasks overflow, same, find"),
])
def test_bad_arguments_get_one_line_naming_what_was_expected(tiny_run, args, expected):
    result = CliRunner().invoke(app, ["export", str(tiny_run), *args])
    assert result.exit_code == 2 and expected in result.output and len(result.output.strip().splitlines()) == 1


def test_an_export_never_replaces_the_run_or_a_foreign_folder(tiny_run, tmp_path):
    for out in (tiny_run, tiny_run.parent):
        with pytest.raises(ConfigError, match="holds the run itself"):
            export_run(tiny_run, "onnx", out=out)
    (tmp_path / "notes").mkdir()
    with pytest.raises(ConfigError, match="is not a onnx export"):
        export_run(tiny_run, "onnx", out=tmp_path / "notes")


def test_backend_names_are_checked(tiny_run):
    result = CliRunner().invoke(app, ["predict", str(tiny_run), "--task", "overflow", "--backend", "tensorrt"])
    assert result.exit_code == 2 and "--backend 'tensorrt': expected one of torch, onnx, onnx-int8" in result.output


def test_the_manifest_says_how_pairs_and_windows_are_fed(windowed_run):
    tasks = read_json(windowed_run / "export" / "onnx" / "mtpeft-onnx.json")["tasks"]
    assert tasks["same"]["pair_encoding"] == "siamese" and "pairs" in tasks["same"]["feed"]
    windows = tasks["same"]["windows"]
    assert windows["pooling"] == "mean" and windows["max_windows"] == 2
    assert len(windows["prefix"]) + len(windows["suffix"]) + windows["content"] == WINDOW_LENGTH
    assert tasks["overflow"]["windows"]["pooling"] == "max" and tasks["find"]["windows"] is None
