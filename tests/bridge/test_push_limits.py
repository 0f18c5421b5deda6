"""The HTTP endpoints' body limit is enforced while the body streams in, through a real uvicorn
server: a huge chunked body from an authenticated device is cut at the limit."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from firmware_bridge.push import MAX_BODY_BYTES, create_app

from tests.bridge.test_vendor_http import HTTP, TOKEN
from tests.fix_mqtt import free_port, wait_port


class CountingApp:
    """ASGI wrapper: how many body bytes the application pulled from the server."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.read = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def counting() -> Any:
            message = await receive()
            if message.get("type") == "http.request":
                self.read += len(message.get("body", b""))
            return message

        await self.app(scope, counting, send)


@pytest.fixture
def push_server(broker, db_url, bridge_factory) -> Iterator[tuple[int, CountingApp]]:
    bridge = bridge_factory(broker.port, db_url, [HTTP])
    app = CountingApp(create_app(bridge, timeout_s=5))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_port(port)
    yield port, app
    server.should_exit = True
    thread.join(10)


def _post_chunked(port: int, headers: str, total: int, chunk: int = 65536) -> tuple[bytes, int]:
    """Send a chunked body of up to `total` bytes, stopping as soon as the server answers."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            (
                "POST /v1/push/push/bv-f-tank1 HTTP/1.1\r\nHost: bridge\r\n"
                f"{headers}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            ).encode()
        )
        piece = f"{chunk:x}\r\n".encode() + b" " * chunk + b"\r\n"
        answer = b""
        deadline = time.monotonic() + 60
        while sent < total and time.monotonic() < deadline:
            readable, _, _ = select.select([s], [], [], 0)
            if readable:
                break
            try:
                s.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += chunk
        s.settimeout(10)
        try:
            while b"\r\n\r\n" not in answer:
                data = s.recv(65536)
                if not data:
                    break
                answer += data
        except (ConnectionResetError, TimeoutError):
            pass
    return answer, sent


def test_huge_chunked_body_is_cut_at_the_limit(push_server: tuple[int, CountingApp]) -> None:
    port, app = push_server
    total = 400 * 1024 * 1024
    answer, sent = _post_chunked(port, f"Authorization: Bearer {TOKEN}\r\n", total)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    # The bridge stopped reading just past the limit (what uvicorn had buffered in one receive),
    # and the client was stopped long before its 400 MB were sent (what is in flight is the
    # kernel's socket buffers).
    assert MAX_BODY_BYTES < app.read < 2 * MAX_BODY_BYTES
    assert sent < 64 * 1024 * 1024


def test_declared_length_over_the_limit_is_refused_before_reading(
    push_server: tuple[int, CountingApp],
) -> None:
    port, app = push_server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            (
                "POST /v1/push/push/bv-f-tank1 HTTP/1.1\r\nHost: bridge\r\n"
                f"Authorization: Bearer {TOKEN}\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n"
            ).encode()
        )
        answer = s.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413")
    assert app.read == 0


def test_unauthenticated_body_is_not_read(push_server: tuple[int, CountingApp]) -> None:
    port, app = push_server
    answer, _ = _post_chunked(port, "", 8 * 1024 * 1024)
    assert answer.startswith(b"HTTP/1.1 401")
    assert app.read == 0
