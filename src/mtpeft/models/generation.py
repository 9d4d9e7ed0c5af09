"""Generation through the shared module: the LM loss on target tokens, and batched greedy/beam decoding.

A run with generation tasks loads the backbone with its LM head (``load_backbone(language_model=True)``).
Decoder-only: the method adapts the LM's base module, which every task encodes with;
:func:`attach_adapted_base` puts the adapted module back inside the LM, so ``generate`` decodes through
the same shared weights and the pretrained LM head. The head stays frozen unless it is tied to the input
embeddings (then it trains exactly when the embeddings do, under full fine-tuning). Encoder-decoder
(T5 family): the method adapts encoder and decoder; other tasks read the encoder, generation tasks run
the whole model.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from mtpeft.data.collate import IGNORE_INDEX, length_sorted_chunks, pad
from mtpeft.data.encode import end_token_id
from mtpeft.models.backbone import Backbone


def attach_adapted_base(backbone: Backbone, encoder: nn.Module) -> nn.Module:
    """Point ``backbone.lm`` at the adapted weights in ``encoder``; return the LM head.

    ``encoder`` is what a method's ``inject``/``load`` returned: a peft model wrapping the base, or the
    base itself (bottleneck adapters, full fine-tuning, possibly a freshly loaded model). An encoder-decoder
    IS that base (the method adapted encoder and decoder); a decoder-only LM gets it as its base module.
    """
    base = encoder.get_base_model() if hasattr(encoder, "get_base_model") else encoder
    if backbone.seq2seq:
        backbone.lm = base
        return base.get_output_embeddings()
    lm = backbone.lm
    setattr(lm, lm.base_model_prefix, base)
    head = lm.get_output_embeddings()
    if getattr(lm.config, "tie_word_embeddings", False):
        head.weight = base.get_input_embeddings().weight  # a reloaded full model: tie to ITS embeddings
    else:
        head.weight.requires_grad_(False)
    return head


def next_token_loss(hidden: torch.Tensor, labels: torch.Tensor, head: nn.Module) -> torch.Tensor:
    """Mean cross-entropy of predicting each target token from the position before it.

    Only target positions go through the LM head (a 49k-word vocabulary costs as much per position as
    several transformer layers), so prompt tokens cost no vocabulary projection at all.
    """
    targets = labels[:, 1:]
    keep = targets != IGNORE_INDEX
    logits = head(hidden[:, :-1][keep])
    return F.cross_entropy(logits.float(), targets[keep])


class TextGenerator:
    """Batched decoding of token prompts: greedy (``num_beams=1``) or beam search.

    A causal LM gets its prompts padded on the left, so every row continues from the same column
    (``generate`` derives position ids from the attention mask: a padded prompt decodes as it would
    alone); an encoder-decoder reads them right-padded and writes its answer in the decoder.
    """

    def __init__(self, lm: nn.Module, tokenizer: Any, num_beams: int = 1, seq2seq: bool = False) -> None:
        self.lm = lm
        self.tokenizer = tokenizer
        self.num_beams = num_beams
        self.seq2seq = seq2seq

    @torch.no_grad()
    def generate(self, prompts: list[list[int]], max_new_tokens: int, batch_size: int, device: Any,
                 desc: str | None = None) -> list[str]:
        """The decoded continuation of every prompt (special tokens dropped, whitespace stripped), in order."""
        from transformers import GenerationConfig

        settings = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, num_beams=self.num_beams,
                                    pad_token_id=self.tokenizer.pad_token_id,
                                    eos_token_id=end_token_id(self.tokenizer))
        texts = [""] * len(prompts)
        chunks = length_sorted_chunks(prompts, max(1, batch_size // self.num_beams))
        for chunk in tqdm(chunks, desc=desc or "generate", disable=desc is None, leave=False, dynamic_ncols=True):
            ids, mask = pad([prompts[i] for i in chunk], self.tokenizer.pad_token_id, left=not self.seq2seq)
            with warnings.catch_warnings():  # transformers' own deprecation notice, raised inside generate
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
                out = self.lm.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                                       generation_config=settings)
            written = out if self.seq2seq else out[:, ids.shape[1]:]  # a causal LM's output repeats the prompt
            for row, i in enumerate(chunk):
                texts[i] = self.tokenizer.decode(written[row], skip_special_tokens=True).strip()
        return texts
