import os
import subprocess
import sys


def _oxy(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("OXY_")}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "oxy", *args],
        check=False,
        capture_output=True,
        text=True,
        env=full,
        timeout=60,
    )


def test_unreachable_database_is_one_clear_line() -> None:
    r = _oxy("db", "migrate", OXY_DATABASE_URL="postgresql://nobody@127.0.0.1:1/x")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "cannot connect to the database" in lines[0]
    assert "OXY_DATABASE_URL" in lines[0]


def test_bad_setting_is_one_clear_line() -> None:
    r = _oxy("db", "migrate", OXY_API_PORT="99999")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "OXY_API_PORT" in lines[0]


def test_migrate_against_configured_database(db_url: str) -> None:
    r = _oxy("db", "migrate", OXY_DATABASE_URL=db_url)
    assert r.returncode == 0, r.stderr
    assert "migrations applied: 0" in r.stdout


def test_a_commands_exit_code_reaches_the_shell(tmp_path: object) -> None:
    # `oxy dashboards build --check` exits 1 when files are out of date (an empty folder is).
    r = _oxy("dashboards", "build", "--check", "--out", str(tmp_path))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "out of date" in r.stdout
    r = _oxy("dashboards", "build", "--out", str(tmp_path))
    assert r.returncode == 0
    assert _oxy("dashboards", "build", "--check", "--out", str(tmp_path)).returncode == 0


def test_the_registry_commands_are_found_outside_the_core(tmp_path: object) -> None:
    """`oxy registry …` lives in api.registry (the centre), found by module name like every other
    package's subcommands; the core does not import it."""
    from pathlib import Path

    from oxy.cli import COMMAND_MODULES

    assert COMMAND_MODULES["registry"] == "api.registry.cli"
    path = Path(str(tmp_path)) / "registry.xlsx"
    r = _oxy("registry", "template", str(path))
    assert r.returncode == 0, r.stderr
    assert path.stat().st_size > 0
