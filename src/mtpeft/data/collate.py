"""Batches: pad to the batch's own longest input (dynamic padding), count real vs padded tokens, and group
inputs of similar length (evaluation, prompting and serving batch alike)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mtpeft.data.encode import EncodedSplit
from mtpeft.tasks.spec import TaskKind

IGNORE_INDEX = -100
"""Label of prompt and padding positions of a generation batch: no loss there (``CrossEntropyLoss``'s default)."""


@dataclass
class Batch:
    """Tensors of one task batch; ``pair_*`` hold retrieval candidates (codes); ``target_labels`` the
    generation targets (prompt + target in ``input_ids``, the target's tokens here, -100 elsewhere)."""

    input_ids: torch.Tensor  # (batch, seq)
    attention_mask: torch.Tensor  # (batch, seq)
    labels: torch.Tensor | None = None  # (batch,) float 0/1
    pair_input_ids: torch.Tensor | None = None
    pair_attention_mask: torch.Tensor | None = None
    target_labels: torch.Tensor | None = None  # (batch, seq) long
    real_tokens: int = 0
    padded_tokens: int = 0
    attention_cells: int = 0  # query-key pairs the attention layers compute: sum of padded length^2
    target_tokens: int = 0  # generation: positions that go through the LM head

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def to(self, device: torch.device | str) -> Batch:
        move = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in vars(self).items()}
        return Batch(**move)


def pad(sequences: list[list[int]], pad_id: int, left: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad to the longest sequence: ``(ids, mask)`` of shape ``(batch, longest)``.

    Right padding by default; ``left=True`` for a decoder that predicts after the last position
    (generation, next-token scoring), so every row ends at the same column.
    """
    longest = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, seq in enumerate(sequences):
        cols = slice(longest - len(seq), longest) if left else slice(0, len(seq))
        ids[row, cols] = torch.tensor(seq, dtype=torch.long)
        mask[row, cols] = 1
    return ids, mask


def collate(split: EncodedSplit, indices: list[int], pad_id: int) -> Batch:
    if split.kind is TaskKind.GENERATION:
        return _collate_generation(split, indices, pad_id)
    seqs = [split.ids[i] for i in indices]
    ids, mask = pad(seqs, pad_id)
    real, padded = sum(map(len, seqs)), ids.numel()
    if split.kind is TaskKind.RETRIEVAL:
        codes = [split.pair_ids[i] for i in indices]
        pair_ids, pair_mask = pad(codes, pad_id)
        return Batch(ids, mask, pair_input_ids=pair_ids, pair_attention_mask=pair_mask,
                     real_tokens=real + sum(map(len, codes)), padded_tokens=padded + pair_ids.numel(),
                     attention_cells=_cells(ids) + _cells(pair_ids))
    labels = torch.tensor([split.labels[i] for i in indices], dtype=torch.float32)
    return Batch(ids, mask, labels, real_tokens=real, padded_tokens=padded, attention_cells=_cells(ids))


def _collate_generation(split: EncodedSplit, indices: list[int], pad_id: int) -> Batch:
    """Decoder-only: prompt and target as one right-padded sequence, only the target's positions carry
    labels. Encoder-decoder: the prompt, and the target as the decoder's labels."""
    if split.seq2seq:
        prompts, targets = [split.ids[i] for i in indices], [split.pair_ids[i] for i in indices]
        ids, mask = pad(prompts, pad_id)
        labels, _ = pad(targets, IGNORE_INDEX)
        return Batch(ids, mask, target_labels=labels, real_tokens=sum(map(len, prompts)) + sum(map(len, targets)),
                     padded_tokens=ids.numel() + labels.numel(), attention_cells=_cells(ids) + _cells(labels),
                     target_tokens=sum(map(len, targets)))
    seqs = [split.ids[i] + split.pair_ids[i] for i in indices]
    ids, mask = pad(seqs, pad_id)
    labels = torch.full_like(ids, IGNORE_INDEX)
    for row, i in enumerate(indices):
        start = len(split.ids[i])
        labels[row, start:start + len(split.pair_ids[i])] = torch.tensor(split.pair_ids[i], dtype=torch.long)
    return Batch(ids, mask, target_labels=labels, real_tokens=sum(map(len, seqs)), padded_tokens=ids.numel(),
                 attention_cells=_cells(ids), target_tokens=sum(len(split.pair_ids[i]) for i in indices))


def _cells(ids: torch.Tensor) -> int:
    rows, length = ids.shape
    return int(rows * length * length)


def length_sorted_chunks(sequences: list[list[int]], batch_size: int) -> list[list[int]]:
    """Indices of ``sequences`` in batches of similar length, so little compute goes to padding."""
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
