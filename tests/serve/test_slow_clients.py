"""Slow clients over a real socket: late headers close the connection, a late body gets a 408, and a client
that keeps to the deadlines is served as usual (short timeouts here; the defaults are 10 s and 60 s)."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from mtpeft.serve import BackgroundServer, Limits, Predictor, create_app

TIMEOUT_S = 0.5
SLACK_S = 3.0  # a busy machine may run the timer late, never early
HALF_HEADERS = b"POST /v1/predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: appl"


@pytest.fixture(scope="module")
def address(predictor: Predictor) -> Iterator[tuple[str, int]]:
    limits = Limits(header_timeout_s=TIMEOUT_S, body_timeout_s=TIMEOUT_S)
    with BackgroundServer(create_app(predictor, limits), header_timeout_s=TIMEOUT_S) as url:
        parts = urlsplit(url)
        yield parts.hostname, parts.port


def connect(address: tuple[str, int]) -> socket.socket:
    return socket.create_connection(address, timeout=TIMEOUT_S + 10)  # a hang fails the test, not the suite


def read_until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """What the server sends until it closes the connection, and how long that took."""
    start, data = time.monotonic(), b""
    while chunk := sock.recv(65536):
        data += chunk
    return data, time.monotonic() - start


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP response (status, headers, body) from a connection that stays open."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    status_line, *lines = head.decode().split("\r\n")
    headers = {name.lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)}
    while len(body) < int(headers["content-length"]):
        body += sock.recv(65536)
    return int(status_line.split()[1]), headers, body


def closed_within_the_deadline(elapsed: float) -> bool:
    return TIMEOUT_S * 0.9 <= elapsed < TIMEOUT_S + SLACK_S


def test_half_sent_headers_get_the_connection_closed_within_the_timeout(address):
    with connect(address) as sock:
        sock.sendall(HALF_HEADERS)
        data, elapsed = read_until_closed(sock)
    assert data == b"" and closed_within_the_deadline(elapsed), (data, elapsed)


def test_a_connection_that_sends_nothing_is_closed_too(address):
    with connect(address) as sock:
        data, elapsed = read_until_closed(sock)
    assert data == b"" and closed_within_the_deadline(elapsed), (data, elapsed)


def trickle_until_closed(sock: socket.socket, data: bytes) -> bool:
    """Send ``data`` a byte every 50 ms (each would reset uvicorn's keep-alive timer); True once the server closes."""
    for byte in data:
        try:
            sock.send(bytes([byte]))
        except OSError:  # the server closed the connection
            return True
        readable, _, _ = select.select([sock], [], [], 0.05)
        if readable and sock.recv(1) == b"":
            return True
    return False


def test_trickled_headers_do_not_move_the_deadline(address):
    start = time.monotonic()
    with connect(address) as sock:
        assert trickle_until_closed(sock, HALF_HEADERS + b"ication/json\r\nX-Padding: " + b"a" * 1000)
    assert closed_within_the_deadline(time.monotonic() - start)


def test_a_kept_alive_connection_serves_prompt_requests_then_closes_on_late_headers(address):
    get = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
    with connect(address) as sock:
        sock.sendall(get)
        status, headers, body = read_response(sock)
        assert status == 200 and json.loads(body)["status"] == "ok" and headers.get("connection") != "close"
        sock.sendall(get[:10])  # the next request in two pieces, well within the deadline
        time.sleep(TIMEOUT_S / 5)
        sock.sendall(get[10:])
        assert read_response(sock)[0] == 200
        sock.sendall(HALF_HEADERS)  # the deadline is armed again after each answer
        data, elapsed = read_until_closed(sock)
    assert data == b"" and closed_within_the_deadline(elapsed), (data, elapsed)


def test_a_body_that_does_not_arrive_in_time_gets_a_408_and_the_connection_closed(address):
    head = (b"POST /v1/predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n")
    with connect(address) as sock:
        sock.sendall(head + b'{"items": [')  # 11 of the 100 bytes announced, then nothing
        data, elapsed = read_until_closed(sock)
    head_out, body = data.split(b"\r\n\r\n", 1)
    assert head_out.startswith(b"HTTP/1.1 408") and b"connection: close" in head_out.lower(), data
    assert json.loads(body)["detail"].startswith(f"the request body did not arrive within {TIMEOUT_S:g} s (11 bytes")
    assert closed_within_the_deadline(elapsed), elapsed


def test_a_body_sent_in_pieces_within_the_deadline_is_answered(address):
    body = json.dumps({"items": [{"task": "overflow", "code": "int main() { return 0; }"}]}).encode()
    head = (b"POST /v1/predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
    with connect(address) as sock:
        sock.sendall(head + body[:10])
        time.sleep(TIMEOUT_S / 5)
        sock.sendall(body[10:])
        status, _, answer = read_response(sock)
    assert status == 200 and json.loads(answer)["results"][0]["task"] == "overflow"


def test_a_body_answered_early_is_not_a_way_to_keep_the_connection(address):
    head = (b"POST /v1/predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(Limits().max_body_bytes + 1).encode() + b"\r\n\r\n")
    with connect(address) as sock:
        sock.sendall(head)
        assert read_response(sock)[0] == 413  # refused from the declared length, the body still owed
        start = time.monotonic()
        assert trickle_until_closed(sock, b" " * 1000)  # then trickle the body
    assert closed_within_the_deadline(time.monotonic() - start)
