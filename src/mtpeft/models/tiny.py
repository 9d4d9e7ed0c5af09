"""Tiny randomly initialised models (2 layers, hidden 32) with real tokenizers, for fast tests.

Built deterministically (seed 0) from a config, in the spirit of ``hf-internal-testing/tiny-random-*``,
and cached like any other model so that a run that names one can be reloaded from disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mtpeft.io import atomic_dir

TINY_SIZES: dict[str, Any] = {"hidden": 32, "layers": 2, "heads": 2, "intermediate": 64}


TINY_FAMILIES = ("bert", "roberta", "llama", "qwen2", "t5")


def build_tiny(family: str, tokenizer_dir: Path, target: Path) -> Path:
    """Write a tiny ``family`` model (one of ``TINY_FAMILIES``) with the tokenizer of ``tokenizer_dir``."""
    if (target / "config.json").is_file():
        return target
    import torch
    from transformers import (
        AutoTokenizer,
        BertConfig,
        BertModel,
        LlamaConfig,
        LlamaModel,
        Qwen2Config,
        Qwen2Model,
        RobertaConfig,
        RobertaModel,
        T5Config,
        T5ForConditionalGeneration,
    )

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    h, n, heads, ff = (TINY_SIZES[k] for k in ("hidden", "layers", "heads", "intermediate"))
    vocab = len(tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if family == "bert":
        config: Any = BertConfig(vocab_size=vocab, hidden_size=h, num_hidden_layers=n, num_attention_heads=heads,
                                 intermediate_size=ff, max_position_embeddings=512, pad_token_id=pad)
        model_cls: Any = BertModel
    elif family == "roberta":  # positions start after the padding index, as in RoBERTa and UniXcoder
        config = RobertaConfig(vocab_size=vocab, hidden_size=h, num_hidden_layers=n, num_attention_heads=heads,
                               intermediate_size=ff, max_position_embeddings=514, pad_token_id=pad)
        model_cls = RobertaModel
    elif family == "qwen2":  # grouped-query attention (one key/value head) and biased q/k/v, as in Qwen2
        config = Qwen2Config(vocab_size=vocab, hidden_size=h, num_hidden_layers=n, num_attention_heads=heads,
                             num_key_value_heads=1, intermediate_size=ff, max_position_embeddings=2048,
                             pad_token_id=pad, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                             tie_word_embeddings=False)
        model_cls = Qwen2Model
    elif family == "llama":
        config = LlamaConfig(vocab_size=vocab, hidden_size=h, num_hidden_layers=n, num_attention_heads=heads,
                             num_key_value_heads=heads, intermediate_size=ff, max_position_embeddings=2048,
                             pad_token_id=pad, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                             tie_word_embeddings=False)
        model_cls = LlamaModel
    elif family == "t5":
        config = T5Config(vocab_size=vocab, d_model=h, d_kv=h // heads, d_ff=ff, num_layers=n, num_decoder_layers=n,
                          num_heads=heads, pad_token_id=pad, decoder_start_token_id=pad, feed_forward_proj="relu")
        model_cls = T5ForConditionalGeneration  # whole, so generation tasks have a decoder
    else:
        raise ValueError(f"unknown tiny family {family!r}; valid: {', '.join(TINY_FAMILIES)}")
    torch.manual_seed(0)
    model = model_cls(config)
    with atomic_dir(target) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    return target
