import random

from mtpeft.data.collate import collate
from mtpeft.data.encode import encode_examples
from mtpeft.data.samplers import epoch_plan
from mtpeft.models.backbone import load_backbone
from mtpeft.tasks.spec import Example, TaskKind


def test_bucketed_batches_change_no_example_content_or_label():
    tokenizer = load_backbone("tiny-bert").tokenizer
    rng = random.Random(0)
    examples = [Example(f"e{i}", " ".join(["tok"] * rng.randint(1, 20)) + f" x{i}", None, i % 2)
                for i in range(100)]
    split = encode_examples(examples, TaskKind.BINARY, tokenizer, 64)
    plan = epoch_plan({"t": split.lengths()}, 8, "round_robin", 0.3, seed=0, epoch=0)
    seen = set()
    for step in plan:
        for _, indices in step:
            batch = collate(split, indices, tokenizer.pad_token_id)
            for row, i in enumerate(indices):
                n = int(batch.attention_mask[row].sum())
                assert batch.input_ids[row, :n].tolist() == split.ids[i]
                assert int(batch.labels[row]) == examples[i].label
                assert tokenizer.decode(batch.input_ids[row, :n], skip_special_tokens=True).endswith(f"x{i}")
                seen.add(i)
            assert batch.real_tokens == sum(len(split.ids[i]) for i in indices)
    assert seen == set(range(100))


def test_pairs_are_encoded_jointly_with_a_separator():
    for model in ("tiny-bert", "tiny-llama"):
        tokenizer = load_backbone(model).tokenizer
        split = encode_examples([Example("p", "int a;", "int b;", 1)], TaskKind.PAIR, tokenizer, 32)
        text = tokenizer.decode(split.ids[0])
        assert "a" in text and "b" in text
        assert (tokenizer.sep_token or tokenizer.eos_token) in text


def test_retrieval_truncates_each_side():
    tokenizer = load_backbone("tiny-bert").tokenizer
    split = encode_examples([Example("q", "find " * 100, "code " * 100)], TaskKind.RETRIEVAL, tokenizer, 16)
    assert len(split.ids[0]) == 16 and len(split.pair_ids[0]) == 16
