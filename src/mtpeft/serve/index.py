"""Search indexes kept in memory: a code pool embedded once per retrieval task, ranked by cosine score.

Bounded: at most ``max_indexes`` pools (uploading a name again replaces it), each capped by the request
model. Scores are ``query . code`` of L2-normalised head outputs, as evaluation ranks them.
"""

from __future__ import annotations

from dataclasses import dataclass
from threading import Lock
from typing import Any

import torch

from mtpeft.serve.schemas import Ident


class NoSuchIndex(LookupError):
    """A search names an index that was never uploaded (or was deleted)."""


class TooManyIndexes(RuntimeError):
    """The store is full; delete an index or reuse a name."""


@dataclass
class SearchIndex:
    """One embedded pool: ``embeddings[task]`` is ``(len(ids), dim)``."""

    ids: list[Ident]
    embeddings: dict[str, torch.Tensor]
    truncated: int = 0

    def search(self, task: str, query: torch.Tensor, top_k: int) -> list[dict[str, Any]]:
        """The ``top_k`` best codes for one query embedding ``(dim,)``, best first (ties: pool order)."""
        scores = self.embeddings[task] @ query
        best = torch.argsort(scores, descending=True, stable=True)[:top_k]
        return [{"id": self.ids[i], "score": float(scores[i])} for i in best.tolist()]


class IndexStore:
    """Named indexes, at most ``max_indexes`` of them; safe to use from several threads."""

    def __init__(self, max_indexes: int) -> None:
        self.max_indexes = max_indexes
        self._indexes: dict[str, SearchIndex] = {}
        self._lock = Lock()

    def __len__(self) -> int:
        return len(self._indexes)

    def check_room(self, name: str) -> None:
        """Raise :class:`TooManyIndexes` unless ``name`` can be stored (checked before embedding a pool)."""
        if name not in self._indexes and len(self._indexes) >= self.max_indexes:
            raise TooManyIndexes(f"{self.max_indexes} indexes are loaded ({', '.join(sorted(self._indexes))}); "
                                 "delete one (DELETE /v1/search/index/NAME) or upload under an existing name")

    def put(self, name: str, index: SearchIndex) -> None:
        with self._lock:
            self.check_room(name)
            self._indexes[name] = index

    def get(self, name: str) -> SearchIndex:
        with self._lock:
            if name not in self._indexes:
                loaded = ", ".join(sorted(self._indexes)) or "none"
                raise NoSuchIndex(f"no index {name!r} (loaded: {loaded}); upload one with POST /v1/search/index")
            return self._indexes[name]

    def delete(self, name: str) -> None:
        self.get(name)
        with self._lock:
            self._indexes.pop(name, None)
