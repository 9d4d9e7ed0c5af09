import random

from mtpeft.data.collate import collate
from mtpeft.data.encode import InputFormat, encode_examples
from mtpeft.data.samplers import epoch_plan
from mtpeft.models.backbone import load_backbone
from mtpeft.tasks.spec import Example, TaskKind


def test_bucketed_batches_change_no_example_content_or_label():
    tokenizer = load_backbone("tiny-bert").tokenizer
    rng = random.Random(0)
    examples = [Example(f"e{i}", " ".join(["tok"] * rng.randint(1, 20)) + f" x{i}", None, i % 2)
                for i in range(100)]
    split = encode_examples(examples, TaskKind.BINARY, tokenizer, 64)
    plan = epoch_plan({"t": split.input_sizes()}, 8, "round_robin", 0.3, seed=0, epoch=0)
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


def test_two_input_batches_are_bucketed_input_by_input():
    """A siamese pair pads each input on its own: bucketing by each input's size pads less than by their sum,
    as collate counts it, and every example still comes once."""
    tokenizer = load_backbone("tiny-bert").tokenizer
    rng = random.Random(0)
    examples = [Example(f"e{i}", " ".join(["doc"] * rng.randint(2, 30)), " ".join(["code"] * rng.randint(10, 120)),
                        i % 2) for i in range(512)]
    split = encode_examples(examples, TaskKind.PAIR, tokenizer, 160, inputs=InputFormat(siamese=True))
    assert split.input_sizes()[7] == (len(split.ids[7]), len(split.pair_ids[7]))

    def padded(sizes) -> tuple[int, list[int]]:
        (step_batches,) = zip(*epoch_plan({"t": sizes}, 16, "round_robin", 0.3, seed=0, epoch=0), strict=True)
        batches = [collate(split, indices, tokenizer.pad_token_id) for _, indices in step_batches]
        return sum(b.padded_tokens for b in batches), sorted(i for _, indices in step_batches for i in indices)

    by_input, seen = padded(split.input_sizes())
    by_sum, _ = padded([sum(sizes) for sizes in split.input_sizes()])
    real = sum(map(sum, split.input_sizes()))
    assert seen == list(range(512))
    assert by_input - real < (by_sum - real) / 2, (real, by_input, by_sum)


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
