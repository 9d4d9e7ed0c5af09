"""Fitting the heads on the untrained model's features before fine-tuning (LP-FT, ``train.probe_epochs``): the
heads learn from cached vectors, nothing else moves, the run counts the extra forward, and a resumed run does not
fit them again."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

import pytest
import torch

from mtpeft.evaluate.sharding import Shard
from mtpeft.ledger import attended_pairs, flop_model
from mtpeft.models.heads import ClassificationHead, RetrievalHead, SiameseHead
from mtpeft.run.build import assemble
from mtpeft.train import train
from mtpeft.train.head_probe import Features, fit_head, probe_heads
from tests.train.conftest import crash_after_step
from tests.train.test_training import config


def clusters(count: int, centre: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two overlapping Gaussian clusters (the label is the cluster, 1 around ``centre``): a linear head can
    separate most of them."""
    labels = (torch.arange(count) % 2).float()
    return torch.randn(count, len(centre), generator=generator) + labels[:, None] * centre, labels


def accuracy(head: torch.nn.Module, *inputs: torch.Tensor, labels: torch.Tensor) -> float:
    head.eval()
    with torch.no_grad():
        return float(((head(*inputs) > 0).float() == labels).float().mean())


def test_a_classification_head_fitted_on_cached_vectors_classifies_held_out_ones():
    generator = torch.Generator().manual_seed(0)
    centre = 0.75 * torch.randn(16, generator=generator)  # 2 standard deviations apart
    (train_x, train_y), (test_x, test_y) = clusters(256, centre, generator), clusters(256, centre, generator)
    head = ClassificationHead(16, dropout=0.1)
    before = accuracy(head, test_x, labels=test_y)
    losses = fit_head(head, Features((train_x,), train_y), epochs=8, batch_size=16, lr=1e-2, seed=0)
    assert losses[-1] < 0.7 * losses[0]
    assert accuracy(head, test_x, labels=test_y) > max(before, 0.8)


def test_a_siamese_head_learns_which_pairs_are_the_same():
    generator = torch.Generator().manual_seed(1)
    first = torch.randn(256, 8, generator=generator)
    same = (torch.arange(256) % 2).float()
    second = torch.where(same[:, None] > 0, first + 0.1 * torch.randn(256, 8, generator=generator),
                         torch.randn(256, 8, generator=generator))
    head = SiameseHead(8, dropout=0.0)
    losses = fit_head(head, Features((first[:192], second[:192]), same[:192]), epochs=20, batch_size=16, lr=1e-2,
                      seed=0)
    assert losses[-1] < 0.5 * losses[0]
    assert accuracy(head, first[192:], second[192:], labels=same[192:]) > 0.8


def test_a_retrieval_head_learns_to_rank_its_code_first():
    generator = torch.Generator().manual_seed(2)
    codes = torch.randn(64, 32, generator=generator)
    queries = codes @ torch.randn(32, 32, generator=generator) * 0.3 + codes  # related, not equal
    head = RetrievalHead(32)
    losses = fit_head(head, Features((queries, codes), None), epochs=15, batch_size=16, lr=1e-2, seed=0)
    assert losses[-1] < 0.5 * losses[0]


def test_oversampled_examples_come_as_often_as_in_training(monkeypatch):
    """``repeats`` reaches the batches: a positive repeated 3 times is seen 3 times per probe epoch."""
    seen: list[int] = []
    original = ClassificationHead.forward

    def counting(head, pooled):
        seen.extend(int(v) for v in pooled[:, 0])
        return original(head, pooled)

    monkeypatch.setattr(ClassificationHead, "forward", counting)
    ids = torch.arange(10, dtype=torch.float32)[:, None].repeat(1, 4)  # column 0 names the example
    labels = torch.tensor([1.0, 1.0] + [0.0] * 8)
    fit_head(ClassificationHead(4, 0.0), Features((ids,), labels), epochs=1, batch_size=4, lr=1e-3, seed=0,
             repeats=[3.0, 3.0] + [1.0] * 8)
    assert sorted(seen) == sorted([0, 0, 0, 1, 1, 1, *range(2, 10)])


def test_the_probe_moves_the_heads_and_nothing_else(tmp_path, tiny_jsonl_task):
    cfg = config(tmp_path, tiny_jsonl_task, train__probe_epochs=3)
    built = assemble(cfg)
    encoder_before = {n: p.detach().clone() for n, p in built.model.encoder.named_parameters()}
    head_before = {n: p.detach().clone() for n, p in built.model.heads.named_parameters()}
    work = probe_heads(built.model, built.encoded, built.pad_id, cfg.train, "cpu", nullcontext, Shard(),
                       built.repeats)
    for name, value in built.model.encoder.named_parameters():
        torch.testing.assert_close(value, encoder_before[name], rtol=0, atol=0)
    assert any(not torch.equal(p, head_before[n]) for n, p in built.model.heads.named_parameters())
    assert built.model.training  # left as it was found (train mode after construction)
    assert work.examples == len(built.encoded["overflow"]["train"])
    assert work.losses["overflow"][-1] < work.losses["overflow"][0]


@pytest.mark.slow
def test_a_run_fits_its_heads_once_counts_the_forward_and_resumes_to_the_same_result(tmp_path, tiny_jsonl_task):
    kwargs = {"train__probe_epochs": 4, "train__epochs": 2, "train__checkpoint_every": 2}
    reference = train(config(tmp_path / "a", tiny_jsonl_task, **kwargs), progress=False)
    crashed = config(tmp_path / "b", tiny_jsonl_task, **kwargs)
    with pytest.raises(KeyboardInterrupt), crash_after_step(5):
        train(crashed, progress=False)
    resumed = train(crashed, resume=True, progress=False)

    log = [json.loads(line) for line in (resumed / "train_log.jsonl").read_text().splitlines()]
    assert [row["event"] for row in log].count("probe") == 1  # not fitted again on resume
    assert (log[0]["event"], log[1]["event"], log[1]["step"]) == ("probe", "eval", 0)  # the probe alone, validated
    a, b = (json.loads((r / "metrics.json").read_text()) for r in (reference, resumed))
    assert a["tasks"] == b["tasks"]

    info = json.loads((reference / "ledger.json").read_text())["train_info"]
    probe = info["head_probe"]
    assert probe["losses"]["overflow"][-1] < probe["losses"]["overflow"][0]
    built = assemble(config(tmp_path / "c", tiny_jsonl_task, **kwargs))
    counts = flop_model(built.model.encoding_module(), built.backbone.model.config)
    expected = counts.forward(probe["padded_tokens"], attended_pairs(probe["padded_tokens"], probe["attention_cells"],
                                                                      causal=False))
    flops = info["flops"]
    assert flops["probe_forward"] == expected > 0
    assert flops["total"] == flops["forward"] + flops["backward_activations"] + flops["backward_weights"] + expected


def test_without_probe_epochs_the_run_fits_nothing_first(tmp_path: Path, tiny_jsonl_task):
    run = train(config(tmp_path, tiny_jsonl_task, train__epochs=1), progress=False)
    info = json.loads((run / "ledger.json").read_text())["train_info"]
    assert info.get("head_probe") is None and info["flops"].get("probe_forward") is None
    assert "probe" not in (run / "train_log.jsonl").read_text()
