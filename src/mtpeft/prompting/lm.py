"""A causal LM for prompting: greedy batched generation, yes/no scoring, and mean-pooled embeddings.

Every call pads on the LEFT (all rows end at the same column, where the next token is predicted) and
passes position ids that start at each row's first real token, so a padded row gets exactly the
logits it would get alone. Prompts that share a long beginning (the candidates of one code-search
query, behind the same demonstrations) can be scored with that beginning computed once and its
key/value cache reused. Every call adds to :class:`Usage`: tokens processed, padded positions,
generated tokens and the analytic forward FLOPs (``mtpeft.ledger.flops``) of what ran.
"""

from __future__ import annotations

import copy
import inspect
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from mtpeft.data.collate import length_sorted_chunks, pad
from mtpeft.errors import ConfigError, ModelError
from mtpeft.ledger import flop_model
from mtpeft.models.backbone import quiet_transformers
from mtpeft.models.pooling import pool
from mtpeft.models.zoo import resolve_model

LABEL_WORDS = {1: ("yes", "Yes", " yes", " Yes"), 0: ("no", "No", " no", " No")}
"""Spellings of the answers; the first token of each spelling counts for its label."""


@dataclass
class Usage:
    """What the model processed: the inference side of the ledger."""

    prompts: int = 0
    prompt_tokens: int = 0  # real tokens processed (a shared prefix once per group)
    padded_tokens: int = 0  # positions computed, padding included
    generated_tokens: int = 0
    forward_flops: int = 0
    time_s: float = 0.0


def label_token_ids(tokenizer: Any) -> dict[int, list[int]]:
    """Per label, the distinct first tokens of its spellings; a token shared by both labels is dropped.

    Raises:
        ModelError: when the tokenizer leaves no token that tells yes from no.
    """
    first = {label: {tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in words}
             for label, words in LABEL_WORDS.items()}
    shared = first[0] & first[1]
    out = {label: sorted(ids - shared) for label, ids in first.items()}
    if not out[0] or not out[1]:
        raise ModelError("the tokenizer gives 'yes' and 'no' the same first token; label words cannot be scored")
    return out


def yes_probability(logits: torch.Tensor, label_ids: dict[int, list[int]]) -> torch.Tensor:
    """P(yes) from next-token ``logits`` (batch, vocab): a softmax over the two labels, each label's
    logit being the log-sum-exp over the first tokens of its spellings."""
    logits = logits.float()
    yes = torch.logsumexp(logits[:, label_ids[1]], dim=-1)
    no = torch.logsumexp(logits[:, label_ids[0]], dim=-1)
    return torch.sigmoid(yes - no)


class CausalLM:
    """A decoder-only model with its LM head and tokenizer, loaded offline-first."""

    def __init__(self, reference: str, progress: bool = True) -> None:
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        source = resolve_model(reference)
        try:
            config = AutoConfig.from_pretrained(source)
            self.tokenizer = AutoTokenizer.from_pretrained(source)
        except OSError as err:
            raise ModelError(f"cannot load model {reference!r} from {source}: {err}") from err
        if config.is_encoder_decoder:
            raise ModelError(f"{reference}: prompting needs a decoder-only causal LM, got {config.model_type} "
                             "(encoder-decoder)")
        try:
            with quiet_transformers():
                self.model, info = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32,
                                                                        output_loading_info=True)
        except ValueError as err:
            raise ModelError(f"{reference}: not a causal LM ({err})") from err
        if any("lm_head" in key for key in info["missing_keys"]):
            warnings.warn(f"{reference} has no trained LM head in its checkpoint: it is random, so answers are noise "
                          "(fine for tests, meaningless as results)", stacklevel=2)
        self.model.eval()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token  # padded positions are masked out
        self.reference, self.source = reference, str(source)
        self.context = int(getattr(config, "max_position_embeddings", 0) or 0)
        self.label_ids = label_token_ids(self.tokenizer)
        self.flops = flop_model(self.model.base_model, config)
        self.head_weights = self.model.get_output_embeddings().weight.numel()
        self.usage = Usage()
        self.progress = progress
        # transformers 5.x renamed the forward's `past_key_values` argument to `cache`
        self._cache_arg = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def check_budget(self, max_length: int, max_new_tokens: int) -> None:
        if self.context and max_length + max_new_tokens > self.context:
            raise ConfigError(f"max_length + max_new_tokens = {max_length + max_new_tokens} exceeds the context of "
                              f"{self.reference} ({self.context} tokens)")

    @torch.no_grad()
    def generate(self, prompts: list[list[int]], max_new_tokens: int, batch_size: int,
                 desc: str = "generate") -> tuple[list[str], np.ndarray]:
        """Greedy answers (special tokens removed) and P(yes) at the first generated position."""
        from transformers import GenerationConfig

        settings = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                    pad_token_id=self.tokenizer.pad_token_id,
                                    eos_token_id=self.tokenizer.eos_token_id,
                                    output_scores=True, return_dict_in_generate=True)
        answers: list[str] = [""] * len(prompts)
        p_yes = np.zeros(len(prompts))
        for chunk in self._chunks(prompts, batch_size, desc):
            ids, mask = pad([prompts[i] for i in chunk], self.tokenizer.pad_token_id, left=True)
            out = self.model.generate(input_ids=ids, attention_mask=mask, generation_config=settings)
            new = out.sequences[:, ids.shape[1]:]
            p_yes[chunk] = yes_probability(out.scores[0], self.label_ids).numpy()
            for row, i in enumerate(chunk):
                answers[i] = self.tokenizer.decode(new[row], skip_special_tokens=True).strip()
            self._count(int(mask.sum()), *ids.shape, steps=new.shape[1],
                        generated=int((new != settings.pad_token_id).sum()))
        return answers, p_yes

    @torch.no_grad()
    def score_yes(self, prompts: list[list[int]], batch_size: int, desc: str = "score") -> np.ndarray:
        """P(yes) for the token that would follow each prompt (no generation)."""
        p_yes = np.zeros(len(prompts))
        for chunk in self._chunks(prompts, batch_size, desc):
            ids, mask = pad([prompts[i] for i in chunk], self.tokenizer.pad_token_id, left=True)
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=_positions(mask),
                                logits_to_keep=1).logits[:, -1]
            p_yes[chunk] = yes_probability(logits, self.label_ids).numpy()
            self._count(int(mask.sum()), *ids.shape, steps=1)
        return p_yes

    @torch.no_grad()
    def score_yes_shared(self, groups: list[list[list[int]]], batch_size: int,
                         desc: str = "score") -> list[np.ndarray]:
        """:meth:`score_yes` for groups of prompts: each group's longest common prefix runs once, and every
        prompt of the group continues from its key/value cache (same probabilities, far fewer tokens)."""
        from transformers import DynamicCache

        out = []
        start = time.perf_counter()
        self.usage.prompts += sum(len(g) for g in groups)
        for group in tqdm(groups, desc=desc, disable=not self.progress, dynamic_ncols=True, leave=False):
            shared = min(_common_prefix(group), min(map(len, group)) - 1)  # every prompt keeps a token to score
            prefix = DynamicCache(config=self.model.config)
            self.model(input_ids=torch.tensor([group[0][:shared]]), use_cache=True, logits_to_keep=1,
                       **{self._cache_arg: prefix})
            self._count(shared, 1, shared, steps=1)
            suffixes = [prompt[shared:] for prompt in group]
            p_yes = np.zeros(len(group))
            for chunk in length_sorted_chunks(suffixes, batch_size):
                ids, mask = pad([suffixes[i] for i in chunk], self.tokenizer.pad_token_id, left=True)
                cache = copy.deepcopy(prefix)  # the forward appends to it
                cache.batch_repeat_interleave(len(chunk))
                full_mask = torch.cat([torch.ones(len(chunk), shared, dtype=mask.dtype), mask], dim=1)
                logits = self.model(input_ids=ids, attention_mask=full_mask, position_ids=shared + _positions(mask),
                                    use_cache=True, logits_to_keep=1, **{self._cache_arg: cache}).logits[:, -1]
                p_yes[chunk] = yes_probability(logits, self.label_ids).numpy()
                self._count(int(mask.sum()), *ids.shape, steps=1, context=shared)
            out.append(p_yes)
        self.usage.time_s += time.perf_counter() - start
        return out

    @torch.no_grad()
    def embed(self, texts: list[str], max_tokens: int, batch_size: int, desc: str = "embed") -> torch.Tensor:
        """L2-normalised mean of the last hidden states over real tokens: (len(texts), hidden)."""
        encoded = [list(self.tokenizer(t, add_special_tokens=False)["input_ids"][:max_tokens]) or
                   [self.tokenizer.eos_token_id] for t in texts]
        out = torch.zeros(len(texts), self.model.config.hidden_size)
        for chunk in self._chunks(encoded, batch_size, desc):
            ids, mask = pad([encoded[i] for i in chunk], self.tokenizer.pad_token_id, left=True)
            hidden = self.model.base_model(input_ids=ids, attention_mask=mask,
                                           position_ids=_positions(mask)).last_hidden_state
            out[chunk] = pool("mean", hidden, mask).float()
            self._count(int(mask.sum()), *ids.shape, steps=0)
        return torch.nn.functional.normalize(out, dim=-1)

    def _chunks(self, sequences: list[list[int]], batch_size: int, desc: str) -> Any:
        self.usage.prompts += len(sequences)
        chunks = length_sorted_chunks(sequences, batch_size)
        start = time.perf_counter()
        yield from tqdm(chunks, desc=desc, disable=not self.progress, dynamic_ncols=True, leave=False)
        self.usage.time_s += time.perf_counter() - start

    def _count(self, real: int, rows: int, length: int, steps: int, generated: int = 0, context: int = 0) -> None:
        """Tokens and forward FLOPs of a forward over ``rows x length`` positions that attend to ``context``
        cached positions and to each other, plus ``steps`` positions read off the LM head; after the first,
        each decoding step is one more position attending to all before it (KV cache)."""
        self.usage.prompt_tokens += real
        self.usage.padded_tokens += rows * length
        self.usage.generated_tokens += generated
        flops = self.flops.forward(rows * length, rows * length * (context + length))
        for step in range(1, steps):
            flops += self.flops.forward(rows, rows * (context + length + step))
        self.usage.forward_flops += flops + 2 * self.head_weights * rows * steps


def _common_prefix(sequences: list[list[int]]) -> int:
    """Length of the longest beginning every sequence shares."""
    n = 0
    for column in zip(*sequences, strict=False):
        if any(token != column[0] for token in column):
            break
        n += 1
    return n


def _positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that start at 0 on each row's first real token (what generate() does for left padding)."""
    return (mask.cumsum(-1) - 1).clamp(min=0)
