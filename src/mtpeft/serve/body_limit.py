"""Refuse request bodies over a size limit (413) before any of them is parsed, or too slow to arrive (408).

Plain ASGI: the body is read here, up to the limit and within the time limit, and replayed to the app, so a
client that sends no ``Content-Length`` (chunked) or lies about it is bounded all the same, and one that
trickles its body holds a connection for ``timeout_s`` at most (uvicorn has no body timeout of its own).
(Recent FastAPI has its own ``max_body_size``, but it answers a declared oversize body in plain text; every
error here is JSON.)
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """ASGI middleware: at most ``max_bytes`` of request body, read within ``timeout_s``, reach ``app``."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float) -> None:
        self.app, self.max_bytes, self.timeout_s = app, max_bytes, timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(int(declared), scope, receive, send)
            return
        chunks: list[bytes] = []
        try:
            async with asyncio.timeout(self.timeout_s):
                connected = await self._read(receive, chunks)
        except TimeoutError:
            await self._too_slow(sum(map(len, chunks)), scope, receive, send)
            return
        size = sum(map(len, chunks))
        if size > self.max_bytes:
            await self._refuse(size, scope, receive, send)
            return
        if not connected:
            return
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: wait for the client's disconnect, as the app expects
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive, chunks: list[bytes]) -> bool:
        """Add the body's chunks to ``chunks`` until it ends or passes ``max_bytes``; False if the client left."""
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return False
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes or not message.get("more_body", False):
                return True

    async def _refuse(self, size: int, scope: Scope, receive: Receive, send: Send) -> None:
        detail: dict[str, Any] = {"detail": f"request body is at least {size} bytes; the limit is {self.max_bytes} "
                                            "(mtpeft serve --max-body-bytes)"}
        await JSONResponse(detail, status_code=413)(scope, receive, send)

    async def _too_slow(self, size: int, scope: Scope, receive: Receive, send: Send) -> None:
        detail = {"detail": f"the request body did not arrive within {self.timeout_s:g} s ({size} bytes came); "
                            "send it faster (mtpeft serve --body-timeout-s)"}
        # the rest of the body is not read: the connection cannot carry another request, so it is closed
        await JSONResponse(detail, status_code=408, headers={"Connection": "close"})(scope, receive, send)
