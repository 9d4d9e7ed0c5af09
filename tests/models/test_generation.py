"""Generation through the shared module: prompts, target-only labels, the LM loss against transformers'
own, decoding through the ADAPTED weights, and padding that changes no output."""

from __future__ import annotations

import pytest
import torch

from mtpeft.config import config_from_dict
from mtpeft.data.collate import IGNORE_INDEX, collate
from mtpeft.data.encode import GenerationFormat, encode_examples
from mtpeft.errors import ConfigError, ModelError
from mtpeft.methods import create_method
from mtpeft.models.backbone import load_backbone
from mtpeft.models.generation import TextGenerator, attach_adapted_base, next_token_loss
from mtpeft.run.build import assemble
from mtpeft.tasks.spec import Example, TaskKind

FORMAT = GenerationFormat("Summarize the function above.", max_target_length=6)


def adapted_lm(reference: str):
    """``reference`` loaded with its LM head, LoRA injected, B made non-zero so the adapter changes outputs."""
    backbone = load_backbone(reference, language_model=True)
    encoder = create_method("lora", {"r": 4, "alpha": 8}).inject(backbone)
    with torch.no_grad():
        for name, p in encoder.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    return backbone, encoder, attach_adapted_base(backbone, encoder)


@pytest.fixture(scope="module")
def lora_llama():
    """tiny-llama as a causal LM."""
    return adapted_lm("tiny-llama")


def examples() -> list[Example]:
    return [Example("a", "def add(a, b):\n    return a + b", target="Add two numbers and return the sum."),
            Example("b", "def neg(x):\n    return -x " + "# pad " * 40, target="Negate.")]


def test_prompt_keeps_the_instruction_and_the_start_when_cut(lora_llama):
    tokenizer = lora_llama[0].tokenizer
    split = encode_examples(examples(), TaskKind.GENERATION, tokenizer, 24, FORMAT)
    suffix = tokenizer("\n" + FORMAT.instruction + "\n", add_special_tokens=False)["input_ids"]
    start = tokenizer("def neg(x):", add_special_tokens=True)["input_ids"]
    long_prompt = split.ids[1]
    assert len(long_prompt) == 24 and long_prompt[-len(suffix):] == suffix
    assert long_prompt[:len(start)] == start
    for target in split.pair_ids:  # at most max_target_length tokens, always ending the sequence
        assert len(target) <= FORMAT.max_target_length and target[-1] == tokenizer.eos_token_id
    assert split.references == [ex.target for ex in examples()] and split.max_new_tokens == 6


def test_collate_labels_only_the_target(lora_llama):
    tokenizer = lora_llama[0].tokenizer
    split = encode_examples(examples(), TaskKind.GENERATION, tokenizer, 24, FORMAT)
    batch = collate(split, [0, 1], tokenizer.pad_token_id)
    for row in range(2):
        prompt, target = split.ids[row], split.pair_ids[row]
        labels = batch.target_labels[row]
        assert batch.input_ids[row, :len(prompt) + len(target)].tolist() == prompt + target
        assert labels[labels != IGNORE_INDEX].tolist() == target
        assert (labels[:len(prompt)] == IGNORE_INDEX).all()
    assert batch.real_tokens == sum(map(sum, split.input_sizes()))


def test_loss_on_targets_equals_transformers_causal_lm_loss(lora_llama):
    backbone, encoder, head = lora_llama
    tokenizer = backbone.tokenizer
    split = encode_examples(examples(), TaskKind.GENERATION, tokenizer, 24, FORMAT)
    batch = collate(split, [0, 1], tokenizer.pad_token_id)
    with torch.no_grad():
        hidden = encoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
        ours = next_token_loss(hidden, batch.target_labels, head)
        reference = backbone.lm(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                                labels=batch.target_labels).loss
    assert torch.allclose(ours, reference, atol=1e-5), (ours, reference)


def test_the_language_model_runs_through_the_adapter(lora_llama):
    backbone, encoder, head = lora_llama
    ids = torch.tensor([[5, 17, 42, 9]])
    with torch.no_grad():
        through_lm = backbone.lm(input_ids=ids).logits
        through_encoder = head(encoder(input_ids=ids).last_hidden_state)
        with encoder.disable_adapter():
            without_adapter = backbone.lm(input_ids=ids).logits
    assert torch.allclose(through_lm, through_encoder, atol=1e-5)
    assert not torch.allclose(through_lm, without_adapter, atol=1e-3)  # the adapter is really in the LM's path


def test_padding_changes_no_generated_text(lora_llama):
    backbone = lora_llama[0]
    split = encode_examples(examples(), TaskKind.GENERATION, backbone.tokenizer, 40, FORMAT)
    generator = TextGenerator(backbone.lm, backbone.tokenizer)
    together = generator.generate(split.ids, 5, batch_size=2, device="cpu")
    alone = [generator.generate([prompt], 5, batch_size=1, device="cpu")[0] for prompt in split.ids]
    assert together == alone
    beams = TextGenerator(backbone.lm, backbone.tokenizer, num_beams=2).generate(split.ids, 5, 4, "cpu")
    assert len(beams) == 2 and all(isinstance(text, str) for text in beams)


def _config(**changes):
    data = {"name": "g", "model": "tiny-llama", "method": "lora",
            "tasks": [{"name": "summarization", "max_examples": {"train": 8, "validation": 4, "test": 4}}],
            "train": {"max_length": 64}}
    data.update(changes)
    return config_from_dict(data)


def test_generation_refuses_methods_outside_the_forward_and_models_that_cannot_generate():
    with pytest.raises(ConfigError, match="generation tasks need one of adapter, full, ia3, lora, parallel_adapter"):
        assemble(_config(method="prefix"))
    with pytest.raises(ModelError, match=r"need a decoder-only language model .* is an encoder"):
        assemble(_config(model="tiny-bert"))


def test_custom_generation_metric_must_fit_the_target_language():
    task = {"name": "docs", "kind": "generation", "source": "stdlib-summarization", "metric": "codebleu"}
    with pytest.raises(ConfigError, match="'codebleu' is not a metric of this generation task"):
        assemble(_config(tasks=[task]))


@pytest.fixture(scope="module")
def lora_t5():
    """tiny-t5 loaded whole: LoRA in encoder and decoder."""
    return adapted_lm("tiny-t5")[:2]


def test_encoder_decoder_reads_the_prompt_and_labels_the_decoder(lora_t5):
    tokenizer = lora_t5[0].tokenizer
    seq2seq = GenerationFormat("Summarize the function above.", 6, seq2seq=True)
    split = encode_examples(examples(), TaskKind.GENERATION, tokenizer, 24, seq2seq)
    batch = collate(split, [0, 1], tokenizer.pad_token_id)
    for row in range(2):
        assert batch.input_ids[row, :len(split.ids[row])].tolist() == split.ids[row]
        labels = batch.target_labels[row]
        assert labels[labels != IGNORE_INDEX].tolist() == split.pair_ids[row]
    assert split.pair_ids[0][-1] == tokenizer.sep_token_id  # a BERT vocabulary ends answers with [SEP]


def test_encoder_decoder_generates_through_the_adapter_and_ignores_padding(lora_t5):
    backbone, encoder = lora_t5
    assert backbone.lm is encoder.get_base_model()  # the adapted model itself generates
    split = encode_examples(examples(), TaskKind.GENERATION, backbone.tokenizer, 40,
                            GenerationFormat("Summarize.", 5, seq2seq=True))
    generator = TextGenerator(backbone.lm, backbone.tokenizer, seq2seq=True)
    together = generator.generate(split.ids, 5, batch_size=2, device="cpu")
    assert together == [generator.generate([prompt], 5, 1, "cpu")[0] for prompt in split.ids]
    ids = torch.tensor([split.ids[0]])
    decoder = torch.tensor([[backbone.lm.config.decoder_start_token_id]])
    with torch.no_grad():
        adapted = backbone.lm(input_ids=ids, decoder_input_ids=decoder).logits
        with encoder.disable_adapter():
            plain = backbone.lm(input_ids=ids, decoder_input_ids=decoder).logits
    assert not torch.allclose(adapted, plain, atol=1e-3)  # the adapter is in the generating model's path
