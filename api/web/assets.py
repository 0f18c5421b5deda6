"""Third-party front-end assets, installed by npm into `api/static/node_modules` and served from
there under `/vendor/<package>/<file>` (never a CDN, never files copied into the repository).

Install them with `npm ci --prefix api/static`. The application refuses to start without them,
with that command in the message.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from api.policy import Scope, policy

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
NODE_MODULES = STATIC_DIR / "node_modules"
INSTALL_COMMAND = "npm ci --prefix api/static"

# Package -> the folder inside it that may be served. Only these are reachable.
VENDOR: dict[str, str] = {
    "leaflet": "dist",
    "chart.js": "dist",
    "topojson-client": "dist",
    "world-atlas": ".",
}

# Files the pages load; their absence means the npm step was skipped.
REQUIRED: tuple[str, ...] = (
    "leaflet/dist/leaflet.js",
    "leaflet/dist/leaflet.css",
    "chart.js/dist/chart.umd.min.js",
    "topojson-client/dist/topojson-client.min.js",
    "world-atlas/countries-50m.json",
)

ALLOWED_SUFFIXES = frozenset({".js", ".css", ".json", ".png", ".svg", ".map"})


class AssetsMissing(RuntimeError):
    """The npm-installed front-end assets are not there."""


def check_assets(root: Path = NODE_MODULES) -> None:
    """Raise AssetsMissing (naming the install command) unless every required asset exists."""
    missing = [name for name in REQUIRED if not (root / name).is_file()]
    if missing:
        raise AssetsMissing(
            f"front-end assets missing ({', '.join(missing)}): run `{INSTALL_COMMAND}` "
            "from the repository root"
        )


def _resolve(base: Path, rel: str) -> Path:
    """`rel` inside `base`, or 404 (no way out of the folder, only known file types)."""
    target = (base / rel).resolve()
    if not target.is_relative_to(base.resolve()) or target.suffix not in ALLOWED_SUFFIXES:
        raise HTTPException(404, "not found")
    if not target.is_file():
        raise HTTPException(404, "not found")
    return target


router = APIRouter(include_in_schema=False)

# Long caching is safe: the lock file pins versions and a new install changes nothing in place
# until the process restarts.
_CACHE = {"cache-control": "public, max-age=86400"}


@router.get("/vendor/{package}/{path:path}", dependencies=[policy(scope=Scope.PUBLIC)])
async def vendor_file(package: str, path: str) -> FileResponse:
    """A file of an npm-installed package (whitelisted packages and folders only)."""
    folder = VENDOR.get(package)
    if folder is None:
        raise HTTPException(404, "not found")
    return FileResponse(_resolve(NODE_MODULES / package / folder, path), headers=_CACHE)


FAVICON = Path(__file__).resolve().parents[1] / "static" / "favicon.svg"


@router.get("/favicon.ico", include_in_schema=False, dependencies=[policy(scope=Scope.PUBLIC)])
async def favicon() -> FileResponse:
    """The site icon where browsers look for it on their own (pages link the SVG too)."""
    return FileResponse(FAVICON, media_type="image/svg+xml", headers=_CACHE)
