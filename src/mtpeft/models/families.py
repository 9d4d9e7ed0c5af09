"""Model families: architectures that name their modules alike, so one set of defaults adapts all of them.

A backbone's ``model_type`` (from its ``config.json``) decides its family; the family decides where methods go by
default (each method's ``default_targets``, see :mod:`mtpeft.methods`) and how the backbone is loaded. A model
type outside every family still loads and trains: methods then need their targets in ``method_args``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Family = Literal["bert", "llama", "t5", "other"]


@dataclass(frozen=True)
class ModelFamily:
    name: Family
    model_types: tuple[str, ...]
    decoder: bool  # decoder-only: causal attention, a language-model head to generate with
    examples: str  # well-known members, for messages and docs


FAMILIES: dict[Family, ModelFamily] = {f.name: f for f in (
    ModelFamily("bert", ("bert", "roberta", "xlm-roberta", "camembert", "electra"), False,
                "MiniLM, CodeBERT, UniXcoder"),
    ModelFamily("llama", ("llama", "qwen2", "qwen3", "mistral", "starcoder2", "gemma", "gemma2"), True,
                "SmolLM2, DeepSeek-Coder, Qwen2.5-Coder"),
    ModelFamily("t5", ("t5", "mt5", "umt5", "codet5"), False, "CodeT5, CodeT5+"),
)}

OTHER_DECODERS = ("gpt2", "gpt_neox", "gpt_bigcode", "phi", "phi3", "falcon", "opt", "mixtral", "codegen")
"""Decoder-only model types outside the families: they train with targets given in ``method_args``."""


def family_of(model_type: str) -> Family:
    return next((f.name for f in FAMILIES.values() if model_type in f.model_types), "other")


def is_decoder_type(model_type: str) -> bool:
    family = FAMILIES.get(family_of(model_type))
    return model_type in OTHER_DECODERS or (family is not None and family.decoder)
