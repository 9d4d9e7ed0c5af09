"""Close connections that do not send a request's headers in time (slowloris).

uvicorn bounds the idle time between requests (``timeout_keep_alive``), but any byte received cancels that
timer, and nothing bounds how long a request's headers may take: a client that sends half its headers, or
one byte every few seconds, holds its connection (and a file descriptor) as long as it likes. This h11
protocol arms a deadline whenever it waits for a request's headers (on connecting, and after each answer)
and closes the connection if they are not complete by then; bytes that arrive do not move it. The body has
its own deadline, kept by :class:`~mtpeft.serve.body_limit.BodyLimit`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class HeaderTimeout(H11Protocol):
    """uvicorn's h11 protocol with a deadline of ``header_timeout_s`` whenever the client owes the server bytes
    and the server owes it nothing: a request's headers, or the rest of a body the app answered early (413)."""

    header_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._waiting_for_client():  # the headers are in: the app has the request
            self._disarm()
        elif self._deadline is None:  # the end of a body answered early came: the next request is due
            self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._waiting_for_client() and not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _waiting_for_client(self) -> bool:
        """Nothing to answer (h11's server state IDLE, or DONE with the client's body still coming)."""
        return self.conn.our_state in (h11.IDLE, h11.DONE)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.header_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.logger.debug("closing a connection: no complete request headers within %g s", self.header_timeout_s)
            self.transport.close()


def with_header_timeout(timeout_s: float) -> type[HeaderTimeout]:
    """The protocol class to give uvicorn (its ``http`` setting), closing after ``timeout_s`` without headers."""
    return type("HeaderTimeout", (HeaderTimeout,), {"header_timeout_s": timeout_s})
