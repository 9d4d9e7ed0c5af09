"""bench/gpu.py: the committed configs are the paper's backbones at their published sizes, and the CPU path (the
same code as on a GPU, on the tiny models) reports numbers that agree with the FLOP model and with each other."""

from __future__ import annotations

import importlib.util
import json
import math
import sys

import pytest
import torch

from mtpeft.io import read_json
from mtpeft.ledger import attended_pairs, flop_model
from mtpeft.methods import create_method
from mtpeft.models.backbone import load_backbone
from tests.conftest import ROOT

CONFIGS = ROOT / "bench" / "gpu_configs"
BACKBONES = ["microsoft/unixcoder-base", "Salesforce/codet5p-770m", "deepseek-ai/deepseek-coder-1.3b-base",
             "Qwen/Qwen2.5-Coder-1.5B"]
METHOD_ARGS = {"lora": {"r": 16, "alpha": 16}, "adapter": {"dim": 64}}  # configs/study-paper-gpu.yaml's
BATCH, LENGTH, WARMUP, STEPS = 2, 16, 1, 1
ROWS_PER_STEP = 5 * BATCH  # a batch of each task; retrieval encodes its query and its code apart


def load_bench(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))  # it imports its sibling train_throughput
    spec = importlib.util.spec_from_file_location("bench_gpu", ROOT / "bench" / "gpu.py")
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_gpu", bench)  # dataclasses look their module up there
    spec.loader.exec_module(bench)
    return bench


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu") / "tiny.json"
    with pytest.MonkeyPatch.context() as monkeypatch:
        report = load_bench(monkeypatch).main([
            "--device", "cpu", "--tiny", "--batch-size", str(BATCH), "--max-length", str(LENGTH),
            "--warmup", str(WARMUP), "--steps", str(STEPS), "--matmul-size", "64", "--out", str(out)])
    assert json.loads(out.read_text()) == report
    return report


def model_type(backbone: str) -> str:
    return read_json(CONFIGS / f"{backbone.split('/')[-1]}.json")["model_type"]


@pytest.mark.parametrize(("backbone", "published", "non_embedding"), [  # parameters as published (Hugging Face)
    ("microsoft/unixcoder-base", 125.9e6, None),
    ("Salesforce/codet5p-770m", 737.6e6, None),  # encoder and decoder; the bench trains the encoder half
    ("deepseek-ai/deepseek-coder-1.3b-base", 1.35e9, None),
    ("Qwen/Qwen2.5-Coder-1.5B", 1.54e9, 1.31e9),  # its model card states both
])
def test_committed_configs_build_the_published_sizes(backbone, published, non_embedding, monkeypatch):
    from transformers import AutoModel, AutoModelForCausalLM, AutoModelForSeq2SeqLM

    hf, source = load_bench(monkeypatch).hf_config(backbone, tiny=False)
    assert source == f"bench/gpu_configs/{backbone.split('/')[-1]}.json"
    whole = {"roberta": AutoModel, "t5": AutoModelForSeq2SeqLM}.get(hf.model_type, AutoModelForCausalLM)
    with torch.device("meta"):  # shapes only: nothing is allocated
        model = whole.from_config(hf)
    total = sum(p.numel() for p in model.parameters())
    assert total == pytest.approx(published, rel=0.01)
    if non_embedding is not None:
        assert total - model.get_input_embeddings().weight.numel() == pytest.approx(non_embedding, rel=0.01)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_without_a_gpu_the_default_device_is_refused_with_the_cpu_commands(monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_:
        load_bench(monkeypatch).main(["--out", "unused.json"])
    assert exit_.value.code == 2
    assert "--device cpu --tiny" in capsys.readouterr().err


@pytest.mark.slow
def test_tiny_run_measures_both_methods_and_the_trainer_on_every_backbone(tiny_report):
    rows = {(r["backbone"], r["method"], r["system"]): r for r in tiny_report["results"]}
    assert set(rows) == {(b, m, s) for b in BACKBONES for m, s in
                         [("lora", "mtpeft"), ("adapter", "mtpeft"), ("lora", "trainer+peft")]}
    for row in rows.values():
        assert row["seconds"] > 0 and row["tokens_per_s"] > 0 and row["share_of_peak"] > 0
        assert row["peak_memory_bytes"] > 0
        assert row["model_config"] == f"tiny-{model_type(row['backbone'])}"
    assert {(p["backbone"], p["method"]) for p in tiny_report["projection"]} == {
        (b, m) for b in BACKBONES for m in METHOD_ARGS}


@pytest.mark.slow
def test_tokens_and_flops_are_the_flop_models_for_the_rows_trained(tiny_report):
    tokens = STEPS * ROWS_PER_STEP * LENGTH
    for row in tiny_report["results"]:
        if row["system"] != "mtpeft":
            continue
        assert row["steps"] == STEPS and row["tokens"] == tokens
        backbone = load_backbone(f"tiny-{model_type(row['backbone'])}")  # the same shapes, loaded from disk
        encoder = create_method(row["method"], METHOD_ARGS[row["method"]]).inject(backbone)
        pairs = attended_pairs(tokens, STEPS * ROWS_PER_STEP * LENGTH**2, backbone.is_decoder)
        assert row["flops"] == flop_model(encoder, backbone.model.config).training(tokens, pairs)["total"]


@pytest.mark.slow
def test_trainer_baseline_trains_the_same_tokens_at_the_same_cost_per_token(tiny_report):
    rows = {(r["backbone"], r["system"]): r for r in tiny_report["results"] if r["method"] == "lora"}
    for backbone in BACKBONES:
        mtpeft, trainer = rows[backbone, "mtpeft"], rows[backbone, "trainer+peft"]
        assert trainer["tokens"] == mtpeft["tokens"]
        assert trainer["examples"] == trainer["steps"] * BATCH == STEPS * ROWS_PER_STEP
        # the same backbone and LoRA; only the heads differ (a decoder's classifier runs on every token)
        assert trainer["flops"] == pytest.approx(mtpeft["flops"], rel=0.01)


@pytest.mark.slow
def test_projection_follows_from_the_protocol_flops_and_the_measured_rates(tiny_report):
    protocol = tiny_report["protocol"]
    assert protocol["batch_size"] == BATCH and protocol["epochs"] == 5  # configs/paper-gpu.yaml's
    assert protocol["steps"] == protocol["epochs"] * math.ceil(max(protocol["train_sizes"].values()) / BATCH)
    measured = {(r["backbone"], r["method"]): r for r in tiny_report["results"] if r["system"] == "mtpeft"}
    for projected in tiny_report["projection"]:
        row = measured[projected["backbone"], projected["method"]]
        assert projected["protocol_flops"] == pytest.approx(row["flops"] / STEPS * protocol["steps"], rel=1e-9)
        assert projected["gpu"] == "H100 SXM" and projected["peak_tflop_per_s"] == 989.0
        assert projected["hours"] == pytest.approx(projected["protocol_flops"] / (989e12 * 0.4) / 3600)
        assert projected["hours_at_measured_share"] is None  # measured on a CPU, projected for a GPU
        hours = protocol["steps"] * ROWS_PER_STEP * LENGTH / row["tokens_per_s"] / 3600
        assert row["projected_protocol_hours"] == pytest.approx(hours)
