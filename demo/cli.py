"""`oxy demo`, registered by `oxy.cli` only when asked for (the edge box never imports it)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `demo` command."""

    @app.command("demo")
    def demo() -> None:
        """Run the whole platform on this machine with embedded defaults (Ctrl-C stops it)."""
        from demo.run import run_demo
        from oxy.settings import load_settings

        run_demo(load_settings())
