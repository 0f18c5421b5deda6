"""HTTP push for devices that cannot speak MQTT: `POST /v1/push/<source>/<device>`.

Each device has its own bearer token; the configuration stores only its sha256 (tokens are long
random strings, so a fast hash is enough and a stolen config does not reveal them). The body is
mapped by the source's declarative JSON mapping and handed to the same pipeline as MQTT input;
the response is sent only once the readings are acknowledged by the platform broker (202), so a
client that sees an error or a timeout simply retries.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from firmware_bridge.config import Device, Source
from firmware_bridge.mapping import handle_vendor, parse_json
from firmware_bridge.model import Outcome
from firmware_bridge.service import Bridge, Delivery

MAX_BODY_BYTES = 1_048_576


def _authenticate(source: Source, device_id: str, authorization: str | None) -> Device:
    device = source.device(device_id)
    token = ""
    if authorization and authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
    digest = hashlib.sha256(token.encode()).hexdigest()
    # Compare even for an unknown device so the timing does not tell which devices exist.
    expected = device.token_sha256 if device and device.token_sha256 else "0" * 64
    if not token or not hmac.compare_digest(digest, expected) or device is None:
        raise HTTPException(
            status_code=401,
            detail="invalid device token / mã thiết bị không hợp lệ",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return device


def create_app(bridge: Bridge, timeout_s: float = 10.0) -> FastAPI:
    """The push application, bound to a running bridge."""
    app = FastAPI(title="oxy firmware-bridge push", docs_url=None, redoc_url=None)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        """Liveness and counters."""
        return bridge.health()

    @app.post("/v1/push/{source_name}/{device_id}", status_code=202, response_model=None)
    async def push(
        source_name: str,
        device_id: str,
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        """Accept one record (or a list) for a device; 202 once handed on."""
        source = bridge.config.source(source_name)
        if source is None or source.protocol != "http":
            raise HTTPException(status_code=404, detail="unknown source / không có nguồn này")
        device = _authenticate(source, device_id, authorization)
        body = await read_body(request, MAX_BODY_BYTES)

        def handler(topic_name: str, payload: bytes) -> Outcome:
            return handle_vendor(source, parse_json(payload), topic_name, device_id=device.id)

        where = f"http/{source.name}/{device.id}"
        return await run_in_threadpool(
            _deliver, bridge, source, where, body, timeout_s, handler=handler
        )  # fmt: skip

    @app.post("/v1/webhook/{source_name}", status_code=202, response_model=None)
    @app.post("/v1/webhook/{source_name}/{path:path}", status_code=202, response_model=None)
    async def webhook(
        source_name: str, request: Request, path: str = "", event: str | None = None
    ) -> JSONResponse:
        """A network server's HTTP integration: every event of every device, as it sends them.

        ChirpStack v4 names the event in `?event=up|status|join|ack|txack|log|location|...`;
        The Things Stack v3 posts every message type to the base URL (or base + a per-type
        path, ignored here): the body's own key tells which (`uplink_message`, `join_accept`).
        """
        source = bridge.config.source(source_name)
        if source is None or source.transport != "webhook":
            raise HTTPException(status_code=404, detail="unknown source / không có nguồn này")
        _authenticate_webhook(source, request)
        if source.protocol == "chirpstack":
            if not event or "/" in event:
                raise HTTPException(
                    status_code=422,
                    detail="missing ?event= (ChirpStack HTTP integration) / thiếu ?event=",
                )
            where = f"webhook/{source.name}/event/{event}"
        else:
            where = f"webhook/{source.name}/{path or 'up'}"
        body = await read_body(request, MAX_BODY_BYTES)
        return await run_in_threadpool(
            _deliver, bridge, source, where, body, timeout_s, handler=None
        )  # fmt: skip

    return app


def _authenticate_webhook(source: Source, request: Request) -> None:
    assert source.webhook_header is not None and source.webhook_token_sha256 is not None
    value = request.headers.get(source.webhook_header, "").strip()
    if value.lower().startswith("bearer "):
        value = value[7:].strip()
    digest = hashlib.sha256(value.encode()).hexdigest()
    if not value or not hmac.compare_digest(digest, source.webhook_token_sha256):
        raise HTTPException(
            status_code=401, detail="invalid webhook token / mã xác thực không hợp lệ"
        )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes `limit`: a declared length over
    it is refused before reading, and a chunked body is read piece by piece, never beyond."""
    too_large = HTTPException(status_code=413, detail="body too large / dữ liệu quá lớn")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _deliver(
    bridge: Bridge,
    source: Source,
    where: str,
    body: bytes,
    timeout_s: float,
    *,
    handler: Callable[[str, bytes], Outcome] | None,
) -> JSONResponse:
    finished = threading.Event()
    result: list[Delivery] = []

    def done(d: Delivery) -> None:
        result.append(d)
        finished.set()

    bridge.process(source, where, body, done=done, handler=handler)
    if not finished.wait(timeout_s):
        return JSONResponse(
            {"detail": "platform broker did not confirm in time; retry / thử lại sau"},
            status_code=503,
        )
    d = result[0]
    if not d.ok:
        return JSONResponse({"detail": "; ".join(d.refused)}, status_code=502)
    if d.dead is not None and d.published == 0:
        return JSONResponse({"detail": d.dead, "recorded": True}, status_code=422)
    return JSONResponse(
        {
            "published": d.published,
            "readings": d.readings,
            "quarantined": d.quarantined,
            "rejected": d.dead,
        },
        status_code=202,
    )
