"""The model side of long inputs, siamese pairs and class weights: a window past the first one changes the
prediction, siamese and joint pairs encode differently, and the losses equal their hand computation."""

from __future__ import annotations

import math

import pytest
import torch

from mtpeft.data.collate import collate
from mtpeft.data.encode import InputFormat, encode_examples
from mtpeft.methods import create_method
from mtpeft.models.backbone import load_backbone
from mtpeft.models.heads import ClassificationHead, binary_loss
from mtpeft.models.multitask import MultiTaskModel, TaskOptions
from mtpeft.tasks.spec import Example, TaskKind


def model_for(kind: TaskKind, options: TaskOptions) -> tuple[MultiTaskModel, object]:
    backbone = load_backbone("tiny-bert")
    encoder = create_method("lora", {"r": 4}).inject(backbone)
    model = MultiTaskModel(encoder, {"t": kind}, backbone.hidden_size, "mean", 0.0, options={"t": options}).eval()
    return model, backbone.tokenizer


def body(last: str) -> str:
    return "int f(char *s) { " + " ".join(f"s[{i}] = 0;" for i in range(10)) + f" {last}(s); }}"


@pytest.mark.parametrize("pooling", ["max", "mean"])
def test_windows_see_a_token_past_the_first_window(pooling):
    model, tokenizer = model_for(TaskKind.BINARY, TaskOptions(window_pooling=pooling))
    examples = [Example("a", body("strcpy"), label=1), Example("b", body("strlen"), label=0)]  # differ at the end
    logits = {}
    for mode, inputs in (("truncate", InputFormat()), ("windows", InputFormat(windows=True, max_windows=8))):
        split = encode_examples(examples, TaskKind.BINARY, tokenizer, 24, inputs=inputs)
        assert len(split.ids[0]) > 24 or mode == "truncate"  # the difference lies past the first window
        with torch.no_grad():
            logits[mode] = model("t", collate(split, [0, 1], tokenizer.pad_token_id))["logits"]
    assert logits["truncate"][0] == logits["truncate"][1]  # the first 24 tokens are all it reads
    assert logits["windows"][0] != logits["windows"][1]


def test_siamese_pair_is_the_head_over_each_input_encoded_alone():
    model, tokenizer = model_for(TaskKind.PAIR, TaskOptions(siamese=True))
    pair = [Example("p", "int add(int a, int b) { return a + b; }", "int sum(int x, int y) { return y + x; }", 1)]
    split = encode_examples(pair, TaskKind.PAIR, tokenizer, 32, inputs=InputFormat(siamese=True))
    with torch.no_grad():
        logit = model("t", collate(split, [0], tokenizer.pad_token_id))["logits"]
        alone = [tokenizer(text)["input_ids"] for text in (pair[0].text, pair[0].text_pair)]
        u, v = (model.encode(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long)) for ids in alone)
        expected = model.heads["t"].net(torch.cat([u, v, (u - v).abs(), u * v], dim=-1)).squeeze(-1)
        joint_model, _ = model_for(TaskKind.PAIR, TaskOptions())
        joint = joint_model("t", collate(encode_examples(pair, TaskKind.PAIR, tokenizer, 32), [0],
                                         tokenizer.pad_token_id))["logits"]
    torch.testing.assert_close(logit, expected)
    assert model.heads["t"].net[0].in_features == 4 * joint_model.heads["t"].net[0].in_features
    assert not torch.allclose(logit, joint)


def test_positive_weight_and_focal_loss_as_computed_by_hand():
    logits, labels = torch.tensor([1.5, -0.5, 0.2, -2.0]), torch.tensor([1.0, 1.0, 0.0, 0.0])

    def by_hand(weight: float, gamma: float) -> float:
        total = 0.0
        for x, y in zip(logits.tolist(), labels.tolist(), strict=True):
            p = 1 / (1 + math.exp(-x))
            p_true = p if y else 1 - p
            term = -(weight * y * math.log(p) + (1 - y) * math.log(1 - p))
            total += (1 - p_true) ** gamma * term
        return total / len(labels)

    assert float(binary_loss(logits, labels)) == pytest.approx(by_hand(1.0, 0.0), rel=1e-6)
    assert float(binary_loss(logits, labels, pos_weight=9.0)) == pytest.approx(by_hand(9.0, 0.0), rel=1e-6)
    assert float(binary_loss(logits, labels, focal_gamma=2.0)) == pytest.approx(by_hand(1.0, 2.0), rel=1e-6)
    assert float(binary_loss(logits, labels, 9.0, 2.0)) == pytest.approx(by_hand(9.0, 2.0), rel=1e-6)
    head = ClassificationHead(8, 0.0, pos_weight=9.0)
    assert float(head.loss(logits, labels)) == pytest.approx(by_hand(9.0, 0.0), rel=1e-6)


def test_auto_weights_and_oversampling_follow_the_training_labels():
    from mtpeft.config import config_from_dict
    from mtpeft.data.samplers import epoch_plan
    from mtpeft.run.build import example_repeats, task_options
    from mtpeft.tasks.load import TaskData, resolve_spec

    config = config_from_dict({"name": "x", "tasks": [{"name": "flaky", "kind": "binary", "source": "jsonl",
                                                       "pos_weight": "auto", "oversample_positives": "auto"}]})
    train = [Example(str(i), "x", label=int(i < 2)) for i in range(10)]  # 2 positives, 8 negatives
    data = TaskData(resolve_spec(config.tasks[0]), {"train": train, "validation": [], "test": []}, "jsonl", None)
    assert task_options(config, data).pos_weight == 4.0
    repeats = example_repeats(config, {"flaky": data})
    assert repeats == {"flaky": [4.0, 4.0, *[1.0] * 8]}
    plan = epoch_plan({"flaky": [5] * 10}, 4, "round_robin", 0.3, 0, 0, repeats=repeats)
    seen = [i for step in plan for _, batch in step for i in batch]
    assert sorted(seen) == sorted([0] * 4 + [1] * 4 + list(range(2, 10)))  # balanced: 8 positive draws, 8 negative
