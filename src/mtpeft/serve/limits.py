"""What one client can make the server do: every bound here turns into a 4xx/503, never a crash or an OOM."""

from __future__ import annotations

from dataclasses import dataclass, fields

from mtpeft.errors import ConfigError


@dataclass(frozen=True)
class Limits:
    """Bounds of the HTTP service (`mtpeft serve` has a flag for the first five and the two timeouts).

    Inputs longer than the run's ``train.max_length`` tokens are cut, as in training, and the answer
    says ``truncated: true``; the tokenizer reads only the characters the kept tokens can come from
    (:func:`~mtpeft.data.encode.keep_chars`). ``max_text_chars`` bounds what one text may send, and the body
    size what a request can send at all. `mtpeft predict` takes the same bounds per text and per line.

    Fairness: every request's items take turns, one item per request at a time, in tokenising (rounds of at
    most ``max_batch`` items and about ``max_tokenize_chars`` characters) and in batches, so a small request
    waits for about the work in flight, not for a large one's. Slow clients: a connection must deliver its
    headers within ``header_timeout_s`` and its body within ``body_timeout_s``, or it is closed.
    """

    max_batch: int = 32  # items per forward pass
    max_wait_ms: float = 5.0  # how long the first queued item waits for others to join its batch
    max_items: int = 64  # items per /v1/predict request
    max_body_bytes: int = 4 * 2**20  # bytes per request body (413 above)
    max_queue: int = 1024  # items waiting for the model before new requests get 503
    max_indexes: int = 8  # search indexes kept in memory
    max_index_items: int = 5000  # codes per search index
    max_top_k: int = 100  # hits per search
    max_text_chars: int = 200_000  # characters per code or query (422 above)
    max_tokenize_chars: int = 100_000  # characters tokenised per turn (at least one text): what a newcomer waits for
    header_timeout_s: float = 10.0  # to send a request's headers, from connecting or the previous answer
    body_timeout_s: float = 60.0  # to send a request's body once its headers are in (408 after)

    def __post_init__(self) -> None:
        bad = [f.name for f in fields(self) if getattr(self, f.name) <= 0]
        if bad:
            raise ConfigError(f"serve limits must be positive: {', '.join(bad)}")
