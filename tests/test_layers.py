"""The package layering of docs/architecture.md holds: the import-linter contracts in
pyproject.toml are kept (a new import from the core upwards, or between the gateway, the bridge,
ingest, the API and the dashboards, fails here as it fails `make lint`)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
# The core's imports from above it on the day the contract was written (issue 21): each is to be
# moved out, so the list in pyproject.toml may shrink but never grow.
# (The registry import's two, `oxy.registry_import -> api.reports.*`, went with it to api.registry.)
KNOWN_EXCEPTIONS = {
    "api.engineer.actions -> ingest.quarantine",
}


def _lint(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), str(config), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_layering_contracts_are_kept() -> None:
    got = _lint(ROOT / "pyproject.toml")
    assert got.returncode == 0, got.stdout + got.stderr
    assert "2 kept, 0 broken" in got.stdout


def test_the_contracts_fail_without_their_listed_exceptions(tmp_path: Path) -> None:
    """The contracts' listed exceptions are each real and needed: without them exactly the
    contracts that list some break, on exactly those imports (and once a module moves,
    import-linter refuses the stale line, so the list can only shrink)."""
    text = (ROOT / "pyproject.toml").read_text()
    start = text.index("[tool.importlinter]")
    section = text[start:]
    stripped = []
    skipping = False
    for line in section.splitlines():
        if line.startswith("ignore_imports"):
            skipping = True
            continue
        if skipping:
            skipping = not line.startswith("]")
            continue
        stripped.append(line)
    config = tmp_path / "contracts.toml"
    config.write_text("\n".join(stripped) + "\n")
    got = _lint(config)
    assert got.returncode != 0
    contracts = tomllib.loads(text)["tool"]["importlinter"]["contracts"]
    with_exceptions = sum(1 for c in contracts if c.get("ignore_imports"))
    kept = len(contracts) - with_exceptions
    assert f"{kept} kept, {with_exceptions} broken" in got.stdout
    listed = [line for c in contracts for line in c.get("ignore_imports", [])]
    broken = {
        line.strip(" -").split(" (l.")[0] for line in got.stdout.splitlines() if " -> " in line
    }
    assert broken == set(listed)
    assert set(listed) <= KNOWN_EXCEPTIONS, "a new exception to the layering"
