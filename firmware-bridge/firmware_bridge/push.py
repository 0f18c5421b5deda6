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
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise HTTPException(status_code=413, detail="body too large / dữ liệu quá lớn")
        return await run_in_threadpool(_deliver, bridge, source, device, body, timeout_s)

    return app


def _deliver(
    bridge: Bridge, source: Source, device: Device, body: bytes, timeout_s: float
) -> JSONResponse:
    finished = threading.Event()
    result: list[Delivery] = []

    def done(d: Delivery) -> None:
        result.append(d)
        finished.set()

    def handler(topic_name: str, payload: bytes) -> Outcome:
        return handle_vendor(source, parse_json(payload), topic_name, device_id=device.id)

    bridge.process(source, f"http/{source.name}/{device.id}", body, done=done, handler=handler)
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
        {"published": d.published, "readings": d.readings, "rejected": d.dead}, status_code=202
    )
