"""`python -m gateway run|status --config FILE ...`: the edge box's lean entry (no typer/rich).

`oxy gateway ...` does the same; this entry exists so a small box (and its systemd unit) loads as
little as possible.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from oxy import OxyError


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the command."""
    parser = argparse.ArgumentParser(prog="python -m gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run gateways")
    run.add_argument("--config", "-c", action="append", type=Path, required=True)
    run.add_argument("--log-level", default="INFO")
    st = sub.add_parser("status", help="show status from the local outbox files")
    st.add_argument("--config", "-c", action="append", type=Path, required=True)
    st.add_argument("--json", action="store_true")
    sim = sub.add_parser("sim", help="run the tank simulator")
    sim.add_argument("--config", "-c", type=Path, required=True)
    sim.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    from gateway import main as commands

    try:
        if args.command == "run":
            commands.run_gateway_command(args.config, args.log_level)
        elif args.command == "status":
            print(commands.status_command(args.config, args.json))
        else:
            commands.run_sim_command(args.config, args.log_level)
    except OxyError as exc:
        print(f"oxy: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
