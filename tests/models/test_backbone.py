"""A backbone built from a config alone (random weights) is the encoder `load_backbone` gives for the same model."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mtpeft.errors import ModelError
from mtpeft.models.backbone import load_backbone, random_backbone


@dataclass
class PadOnly:
    pad_token_id: int


@pytest.mark.parametrize("model", ["tiny-roberta", "tiny-t5", "tiny-llama", "tiny-qwen2"])
def test_random_backbone_has_the_loaded_encoders_architecture(model):
    loaded = load_backbone(model)
    built = random_backbone(loaded.model.config, PadOnly(0), model)
    assert type(built.model) is type(loaded.model)  # T5: the encoder half; decoders: no LM head
    assert (built.family, built.is_decoder, built.hidden_size) == (loaded.family, loaded.is_decoder, loaded.hidden_size)
    assert sum(p.numel() for p in built.model.parameters()) == sum(p.numel() for p in loaded.model.parameters())
    assert built.source == "random initialisation" and built.tokenizer.pad_token_id == 0


def test_random_backbone_replaces_the_attention_dropout_and_leaves_the_config_given_alone():
    config = load_backbone("tiny-roberta").model.config
    built = random_backbone(config, PadOnly(1), "tiny-roberta", attention_dropout=0.0)
    assert built.model.config.attention_probs_dropout_prob == 0.0
    assert config.attention_probs_dropout_prob == 0.1


def test_random_backbone_refuses_an_encoder_decoder_outside_the_t5_family():
    from transformers import BartConfig

    with pytest.raises(ModelError, match="encoder-decoder model_type 'bart' is not supported"):
        random_backbone(BartConfig(), PadOnly(1), "bart")
