"""The ``inferfleet`` command: one entry point, a subcommand per job.

Owns argument parsing and dispatch only; each subcommand's work lives in its own module, imported
lazily so that ``inferfleet plan`` never pays for kopf or the Kubernetes client.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inferfleet",
        description="Place AI inference replicas across GPU and specialised-accelerator pools "
        "under power budgets, latency SLOs and one cost model.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from inferfleet import planning_cli

    planning_cli.register(sub)
    from inferfleet.api import crdgen

    crdgen.register(sub)
    from inferfleet.controller import cli as run_cli

    run_cli.register(sub)
    from inferfleet.sim import devcluster

    devcluster.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return rc


if __name__ == "__main__":
    sys.exit(main())
