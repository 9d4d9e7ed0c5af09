import torch

from mtpeft.models.pooling import pool

HIDDEN = torch.tensor([[[1.0, 1.0], [3.0, 3.0], [100.0, 100.0]],
                       [[2.0, 0.0], [4.0, 0.0], [6.0, 0.0]]])
MASK = torch.tensor([[1, 1, 0], [1, 1, 1]])


def test_mean_ignores_padding():
    assert pool("mean", HIDDEN, MASK).tolist() == [[2.0, 2.0], [4.0, 0.0]]


def test_last_takes_last_real_token_and_cls_the_first():
    assert pool("last", HIDDEN, MASK).tolist() == [[3.0, 3.0], [6.0, 0.0]]
    assert pool("cls", HIDDEN, MASK).tolist() == [[1.0, 1.0], [2.0, 0.0]]


def test_prompt_tuning_virtual_tokens_are_skipped_before_pooling():
    from mtpeft.methods import create_method
    from mtpeft.models.backbone import load_backbone
    from mtpeft.models.multitask import MultiTaskModel
    from mtpeft.tasks.spec import TaskKind

    backbone = load_backbone("tiny-bert")
    method = create_method("prompt", {"num_virtual_tokens": 5})
    model = MultiTaskModel(method.inject(backbone), {"t": TaskKind.BINARY}, 32, "mean", 0.0, method.virtual_tokens)
    enc = backbone.tokenizer(["a b c", "a"], padding=True, return_tensors="pt")
    assert model.encode(enc["input_ids"], enc["attention_mask"]).shape == (2, 32)
