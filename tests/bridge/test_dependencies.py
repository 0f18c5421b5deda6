"""The bridge declares what it imports: every third-party package `firmware_bridge` imports (at
the top of a module or inside a function) is in the base dependencies or the `bridge` extra of
pyproject.toml, so `pip install .[bridge]` is enough to run `oxy bridge run` — without the
centre's extra."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"firmware_bridge", "oxy"}


def _imported_modules(package: Path) -> set[str]:
    found: set[str] = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found - FIRST_PARTY - set(sys.stdlib_module_names) - {"__future__"}


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=!~ ;]", r, maxsplit=1)[0].lower() for r in requirements}


def test_every_third_party_import_of_the_bridge_is_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = _names(project["dependencies"]) | _names(project["optional-dependencies"]["bridge"])
    dists = packages_distributions()
    imported = _imported_modules(ROOT / "firmware-bridge" / "firmware_bridge")
    assert {"fastapi", "uvicorn", "paho"} <= imported  # the scan sees lazy imports too
    missing = {
        module: dists.get(module, [module])
        for module in imported
        # A module counts as declared when its distribution (or one it comes in) is declared;
        # starlette comes with fastapi, pydantic_core with pydantic.
        if not {d.lower() for d in dists.get(module, [module])} & declared
        and module not in {"starlette", "pydantic_core"}
    }
    assert not missing, f"imported by the bridge, not declared for it: {missing}"
