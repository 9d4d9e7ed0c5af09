"""Evaluation split across the processes of a distributed run: each computes every ``world``-th example and
the outputs are gathered back into the split's order, so every example is computed once and kept once (no
padding duplicates at an uneven end, none dropped)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class Shard:
    """This process's share of an evaluation: ``rank`` of ``world`` processes (one process: everything)."""

    rank: int = 0
    world: int = 1

    @classmethod
    def of(cls, accelerator: Any) -> Shard:
        return cls(int(accelerator.process_index), int(accelerator.num_processes))

    def indices(self, count: int) -> list[int]:
        """The examples this process computes: every ``world``-th one, starting at ``rank`` (lengths of
        neighbouring examples are unrelated, so the shares cost about the same)."""
        return list(range(self.rank, count, self.world))

    def gather(self, values: np.ndarray, count: int) -> np.ndarray:
        """Every process's ``values`` (rows for :meth:`indices`) back in example order, on every process."""
        if self.world == 1:
            return values
        shares = self._all_gather(values)
        out = np.empty((count, *values.shape[1:]), dtype=values.dtype)
        for rank, share in enumerate(shares):
            out[rank::self.world] = share
        return out

    def gather_list(self, values: Sequence[Any], count: int) -> list[Any]:
        """:meth:`gather` for a list of Python objects (generated texts)."""
        if self.world == 1:
            return list(values)
        out: list[Any] = [None] * count
        for rank, share in enumerate(self._all_gather(list(values))):
            out[rank::self.world] = share
        return out

    def _all_gather(self, value: Any) -> list[Any]:
        shares: list[Any] = [None] * self.world
        torch.distributed.all_gather_object(shares, value)
        return shares
