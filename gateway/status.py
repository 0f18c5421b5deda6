"""`oxy gateway status`: health read locally from the outbox file, without the broker."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.config import SiteConfig


def read_status(cfg: SiteConfig) -> dict[str, Any]:
    """The last status the gateway wrote, with the outbox depth and age counted now."""
    path: Path = cfg.outbox.path
    out: dict[str, Any] = {"gw": cfg.gateway, "site": cfg.site, "outbox": str(path)}
    if not path.exists():
        out["error"] = "no outbox file yet (the gateway has never run with this config)"
        return out
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        depth, oldest = db.execute("SELECT count(*), min(ts_ms) FROM outbox").fetchone()
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    finally:
        db.close()
    doc = json.loads(meta.get("status", "{}"))
    out.update(doc)
    out["outbox_depth"] = int(depth)
    out["outbox_oldest"] = (
        datetime.fromtimestamp(oldest / 1000, UTC).isoformat() if oldest is not None else None
    )
    out["outbox_age_s"] = round(time.time() - oldest / 1000, 1) if oldest is not None else 0.0
    out["evicted_total"] = int(meta.get("evicted_total", "0"))
    out["published_total"] = int(meta.get("published_total", "0"))
    if "ts" in doc:
        written = datetime.fromisoformat(doc["ts"].replace("Z", "+00:00"))
        out["status_age_s"] = round((datetime.now(UTC) - written).total_seconds(), 1)
    return out


def format_status(s: dict[str, Any]) -> str:
    """Human-readable lines for one gateway."""
    lines = [f"gateway {s.get('site')}/{s.get('gw')}  outbox {s.get('outbox')}"]
    if "error" in s:
        return "\n".join([*lines, f"  {s['error']}"])
    age = s.get("status_age_s")
    interval_note = " (gateway not running?)" if age is not None and age > 120 else ""
    lines.append(f"  status written {age}s ago{interval_note}, pid {s.get('pid')}")
    broker = s.get("broker") or {}
    where = f"{broker.get('host')}:{broker.get('port')}"
    if broker.get("connected_since"):
        lines.append(f"  broker {where} connected since {broker['connected_since']}")
    else:
        lines.append(f"  broker {where} NOT connected: {broker.get('error')}")
    lines.append(
        f"  outbox depth {s['outbox_depth']}, oldest {s['outbox_oldest']} ({s['outbox_age_s']}s), "
        f"evicted {s['evicted_total']}, published {s['published_total']}"
    )
    ack = s.get("ack") or {}
    if ack.get("end_to_end"):
        lines.append(
            f"  centre confirmed seq {ack.get('acked_seq')} of stream {ack.get('epoch')}: "
            f"{ack.get('unconfirmed_messages')} messages unconfirmed, "
            f"{ack.get('confirmed_total')} readings confirmed, {ack.get('resent_total')} re-sends"
        )
    for d in s.get("devices", []):
        err = f"  error: {d['error']}" if d.get("error") and d["state"] != "ok" else ""
        lines.append(
            f"  device {d['device']}: {d['state']}, last good poll {d['last_good_poll']}{err}"
        )
    relay = s.get("relay")
    if relay:
        err = f"  error: {relay['error']}" if relay.get("error") else ""
        lines.append(
            f"  alarm relay {relay['output']}: {relay['state']}, "
            f"alarm written {relay['alarm_written']}{err}"
        )
    if s.get("alarms"):
        lines.append(f"  alarms: {', '.join(s['alarms'])}")
    return "\n".join(lines)
