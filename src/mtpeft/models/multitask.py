"""One backbone + one shared fine-tuning module + one head per task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from mtpeft.data.collate import Batch
from mtpeft.models.generation import next_token_loss
from mtpeft.models.heads import make_head
from mtpeft.models.pooling import pool, pool_windows
from mtpeft.tasks.spec import TaskKind


@dataclass(frozen=True)
class TaskOptions:
    """What a task sets in the shared model besides its kind: how its window vectors pool into one, whether its
    pairs are encoded apart (siamese), and its classification loss."""

    window_pooling: Literal["max", "mean"] = "max"
    siamese: bool = False
    pos_weight: float | None = None
    focal_gamma: float | None = None


class MultiTaskModel(nn.Module):
    """Encodes every input with the SAME (adapted) encoder; only the heads differ per task.

    Args:
        encoder: the backbone as returned by a method's ``inject`` (a peft model, an adapted or a
            fully trainable backbone); called with ``input_ids`` and ``attention_mask``.
        tasks: task name -> kind.
        hidden: the backbone's hidden size.
        pooling: ``mean``, ``cls``, ``pooler`` or ``last``.
        virtual_tokens: positions the method prepends to the output (prompt tuning); skipped before pooling.
        lm_head: the language model's output layer, shared by every generation task (see
            :mod:`mtpeft.models.generation`); required when a task is a generation task.
        seq2seq: ``encoder`` is a whole encoder-decoder: other tasks read its encoder, generation its decoder.
        causal: the encoder attends causally (decoder-only models): right-padded batches then run without
            a mask (see :meth:`attention_mask_for`).
        options: per task, its :class:`TaskOptions` (default: one row per input, joint pairs, plain BCE).
    """

    def __init__(self, encoder: nn.Module, tasks: dict[str, TaskKind], hidden: int, pooling: str,
                 head_dropout: float, virtual_tokens: int = 0, lm_head: nn.Module | None = None,
                 seq2seq: bool = False, causal: bool = False, options: dict[str, TaskOptions] | None = None) -> None:
        super().__init__()
        if lm_head is None and TaskKind.GENERATION in tasks.values():
            raise ValueError("generation tasks need the language model's head (lm_head)")
        self.encoder = encoder
        self.hidden = hidden
        self.kinds = dict(tasks)
        self.pooling = pooling
        self.virtual_tokens = virtual_tokens
        self.options = {t: (options or {}).get(t, TaskOptions()) for t in tasks}
        self.heads = nn.ModuleDict({t: make_head(k, hidden, head_dropout, self.options[t].siamese,
                                                 self.options[t].pos_weight, self.options[t].focal_gamma)
                                    for t, k in tasks.items()})
        self.lm_head = lm_head
        self.seq2seq = seq2seq
        self.causal = causal

    def encoding_module(self) -> nn.Module:
        """What turns token ids into hidden states: the encoder, or an encoder-decoder's encoder stack."""
        return self.encoder.get_encoder() if self.seq2seq else self.encoder

    def attention_mask_for(self, attention_mask: torch.Tensor) -> torch.Tensor | None:
        """The mask to give the encoder: none for a causal encoder's right-padded batch.

        A causal model's real tokens never attend to the padding that follows them, so their outputs are
        the same without the mask (tested), and the attention kernel then takes its causal path, which
        skips the upper triangle, instead of applying a materialised ``L x L`` mask. Pooling and losses
        still read ``attention_mask``.
        """
        if not self.causal:  # encoders: no per-batch check on the hot path
            return attention_mask
        right_padded = bool((attention_mask[:, 1:] <= attention_mask[:, :-1]).all())
        return None if right_padded else attention_mask

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(rows, seq) token ids -> (rows, hidden) pooled vectors, one per row."""
        outputs = self.encoding_module()(input_ids=input_ids, attention_mask=self.attention_mask_for(attention_mask))
        hidden = outputs.last_hidden_state
        if self.virtual_tokens:
            hidden = hidden[:, self.virtual_tokens:]  # prompt tuning prepends its virtual tokens
        return pool(self.pooling, hidden, attention_mask, outputs)

    def represent(self, task: str, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                  owner: torch.Tensor | None = None, count: int = 0) -> torch.Tensor:
        """One vector per input: each row's vector, or (``owner``: the input of each row) the input's windows
        pooled by the task's ``window_pooling`` into ``(count, hidden)``."""
        vectors = self.encode(input_ids, attention_mask)
        if owner is None:
            return vectors
        return pool_windows(self.options[task].window_pooling, vectors, owner, count)

    def input_vectors(self, task: str, batch: Batch) -> tuple[torch.Tensor, ...]:
        """What the task's head reads: one ``(batch, hidden)`` vector per example, and a second one where the batch
        has second inputs (retrieval codes, siamese pairs)."""
        first = self.represent(task, batch.input_ids, batch.attention_mask, batch.owner, len(batch))
        if batch.pair_input_ids is None:
            return (first,)
        return first, self.represent(task, batch.pair_input_ids, batch.pair_attention_mask, batch.pair_owner,
                                     len(batch))

    def forward(self, task: str, batch: Batch) -> dict[str, Any]:
        """Loss and outputs of one task batch: ``logits`` (classification), ``query``/``code`` vectors
        (retrieval), or only the loss (generation: decoding goes through :class:`TextGenerator`)."""
        head = self.heads[task]
        if self.kinds[task] is TaskKind.GENERATION:
            if self.seq2seq:  # the model shifts the labels into decoder inputs and skips -100 itself
                return {"loss": self.encoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                                             labels=batch.target_labels).loss}
            mask = self.attention_mask_for(batch.attention_mask)
            hidden = self.encoder(input_ids=batch.input_ids, attention_mask=mask).last_hidden_state
            return {"loss": next_token_loss(hidden, batch.target_labels, self.lm_head)}
        sides = self.input_vectors(task, batch)
        if self.kinds[task] is TaskKind.RETRIEVAL:
            queries, codes = head(sides[0]), head(sides[1])
            return {"loss": head.loss(queries, codes), "query": queries, "code": codes}
        logits = head(*sides)
        out: dict[str, Any] = {"logits": logits}
        if batch.labels is not None:
            out["loss"] = head.loss(logits, batch.labels)
        return out

    def embed(self, task: str, input_ids: torch.Tensor, attention_mask: torch.Tensor,
              owner: torch.Tensor | None = None, count: int = 0) -> torch.Tensor:
        """Retrieval embeddings of queries or codes (the same head for both)."""
        return self.heads[task](self.represent(task, input_ids, attention_mask, owner, count))

    def embedding_dim(self, task: str) -> int:
        """Size of a retrieval task's embeddings."""
        return int(self.heads[task].proj.out_features)

    def forward_mixed(self, tasks: list[str], input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      owner: torch.Tensor, inputs: list[list[int]]) -> list[torch.Tensor]:
        """ONE encoder pass over the rows of items of different tasks, then each item through its own head.

        Serving one model for every task: the backbone runs once per batch whatever the mix of tasks, and only
        the (small) heads run per task. ``owner[r]`` is the input row ``r`` belongs to (an input has several rows
        with windows); ``inputs[k]`` are item ``k``'s inputs (two for a siamese pair). Returns, per item, a logit
        ``()`` for classification tasks or an embedding ``(dim,)`` for retrieval tasks.
        """
        rows = self.encode(input_ids, attention_mask)
        modes = [self.options[tasks[k]].window_pooling for k, item in enumerate(inputs) for _ in item]
        pooled = {mode: pool_windows(mode, rows, owner, len(modes)) for mode in set(modes)}
        vectors = torch.stack([pooled[mode][j] for j, mode in enumerate(modes)])
        out: dict[int, torch.Tensor] = {}
        for task in dict.fromkeys(tasks):
            items = [k for k, t in enumerate(tasks) if t == task]
            sides = [vectors[[inputs[k][side] for k in items]] for side in range(len(inputs[items[0]]))]
            out.update(zip(items, self.heads[task](*sides), strict=True))
        return [out[k] for k in range(len(tasks))]
