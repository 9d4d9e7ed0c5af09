"""Run the service: in the foreground for `mtpeft serve`, or in a background thread for tests and benchmarks."""

from __future__ import annotations

import socket
import threading
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from mtpeft.serve.app import API_KEY_HEADER, check_api_key, create_app
from mtpeft.serve.header_timeout import with_header_timeout
from mtpeft.serve.limits import Limits
from mtpeft.serve.predictor import Predictor

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
          merge: bool = False, limits: Limits | None = None, backend: str = "torch",
          base_model: str | None = None) -> None:
    """Load the run and serve it with uvicorn until interrupted (``backend``, ``base_model``: see
    :meth:`Predictor.from_run`)."""
    if api_key is not None:
        check_api_key(api_key)  # before the minutes of loading a run
    if host not in LOOPBACK and not api_key:
        warnings.warn(f"serving on {host} without an API key: anyone who reaches the port can use the model; "
                      f"set --api-key or MTPEFT_API_KEY (clients send it as {API_KEY_HEADER})", stacklevel=2)
    limits = limits or Limits()
    predictor = Predictor.from_run(run_dir, merge=merge, backend=backend, base_model=base_model)
    app = create_app(predictor, limits, api_key)
    uvicorn.Server(server_config(app, limits.header_timeout_s, host=host, port=port, log_level="info")).run()


def server_config(app: Any, header_timeout_s: float, **options: Any) -> uvicorn.Config:
    """uvicorn's settings for the service: its h11 protocol closes a connection whose headers are late."""
    return uvicorn.Config(app, http=with_header_timeout(header_timeout_s), **options)


class BackgroundServer:
    """The real server (uvicorn) on a free loopback port, in a daemon thread.

    Example:
        >>> with BackgroundServer(app) as url:  # doctest: +SKIP
        ...     requests.get(f"{url}/healthz")
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", startup_s: float = 30.0,
                 header_timeout_s: float = Limits.header_timeout_s) -> None:
        self.app, self.host, self.startup_s, self.header_timeout_s = app, host, startup_s, header_timeout_s
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def __enter__(self) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((self.host, 0))  # the OS picks a free port; binding here leaves no race with other tests
        port = sock.getsockname()[1]
        self.server = uvicorn.Server(server_config(self.app, self.header_timeout_s, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + self.startup_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start on {self.host}:{port}")
            time.sleep(0.02)
        return f"http://{self.host}:{port}"

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout=30)
