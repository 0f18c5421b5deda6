"""docker-compose.scale.yml (the scale-out profile of issue 22) validates against the Compose
Specification's schema on its own and merged over docker-compose.yml, uses only pinned images of
existing engines (EMQX, TimescaleDB, the platform's own image), puts every new service in the
`scale` profile, documents every variable in .env.example, and references files that exist."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tests.test_compose import (  # noqa: F401 - compose_schema is a fixture
    _env_example,
    _interpolate,
    compose_schema,
)

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "docker-compose.yml"
SCALE = ROOT / "docker-compose.scale.yml"


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def _merge(base: Any, over: Any) -> Any:
    """Compose's merge of an override file, for mappings (sequences of the override are
    appended, as Compose does for volumes and ports; `command` is replaced)."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base[k], v) if k in base and k != "command" else v
        return out
    if isinstance(base, list) and isinstance(over, list):
        return base + [v for v in over if v not in base]
    return over


def _errors(schema: dict[str, Any], doc: dict[str, Any]) -> list[str]:
    v = jsonschema.Draft201909Validator(schema)
    return [f"{list(e.path)}: {e.message}" for e in v.iter_errors(doc)]


def test_scale_profile_validates_alone_and_merged(compose_schema: dict[str, Any]) -> None:  # noqa: F811
    env = _env_example()
    scale = _load(SCALE)
    merged = _merge(_load(BASE), scale)
    for doc in (scale, _interpolate(scale, env, set()), merged, _interpolate(merged, env, set())):
        assert not _errors(compose_schema, doc)
    # A broken profile is refused (so a pass above means something).
    broken = copy.deepcopy(scale)
    broken["services"]["emqx1"]["profiles"] = "scale"
    assert _errors(compose_schema, broken)


def test_scale_services_are_existing_engines_in_the_profile() -> None:
    base, scale = _load(BASE), _load(SCALE)
    new = {n: s for n, s in scale["services"].items() if n not in base["services"]}
    assert {"emqx1", "emqx2", "db-replica", "ingest-a", "ingest-b", "api-read"} <= set(new)
    for name, svc in new.items():
        assert svc.get("profiles") == ["scale"], name
        image = str(svc.get("image", ""))
        assert re.fullmatch(
            r"(emqx/emqx:5\.\d+\.\d+|timescale/timescaledb:[\w.-]+|\$\{OXY_IMAGE:-oxy-platform:latest\})",
            image,
        ), (name, image)
    # Ingest workers share one subscription group, each on its own EMQX node.
    hosts = set()
    for name in ("ingest-a", "ingest-b"):
        env = scale["services"][name]["environment"]
        assert env["OXY_INGEST_GROUP"] == "oxy-ingest"
        assert env["OXY_INGEST_CLIENT_ID"] == f"oxy-{name}"  # one persistent session each
        hosts.add(re.search(r"@([\w.]+):1883", env["OXY_MQTT_URL"]).group(1))  # type: ignore[union-attr]
    assert hosts == {"emqx1.oxy", "emqx2.oxy"}
    # No anonymous broker: both nodes authenticate against a password database.
    for name in ("emqx1", "emqx2"):
        env = _interpolate(scale["services"][name]["environment"], _env_example(), set())
        assert env["EMQX_AUTHENTICATION__1__MECHANISM"] == "password_based"
        assert env["EMQX_AUTHORIZATION__NO_MATCH"] == "deny"


def test_scale_variables_documented_and_files_exist() -> None:
    text = SCALE.read_text(encoding="utf-8")
    env = _env_example()
    seen: set[str] = set()
    _interpolate(_load(SCALE), env, seen)
    assert not {v for v in seen if v not in env}
    for key, value in env.items():
        if re.search(r"PASSWORD|SECRET|TOKEN|COOKIE", key):
            assert value.startswith("CHANGE-ME"), key
    for svc in _load(SCALE)["services"].values():
        for vol in svc.get("volumes", []):
            if isinstance(vol, dict) and vol.get("type") == "bind":
                assert (ROOT / vol["source"]).exists(), vol["source"]
    assert "docker-compose.scale.yml" in (ROOT / "docs" / "scaling.md").read_text(encoding="utf-8")
    assert "--profile scale" in text
