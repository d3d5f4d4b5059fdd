"""The ``inferfleet`` command: one entry point, a subcommand per job (``cli.plan``, ``cli.crds``,
``cli.run``).

Owns argument parsing and dispatch only; each subcommand's work lives in its own package, imported
when the subcommand runs, so that ``inferfleet plan`` never pays for kopf or the Kubernetes client.
Other packages (the dev harness, ``inferfleet_dev``) add their subcommands through
``main(extra=...)``; the runtime never imports them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

__all__ = ["Registrar", "build_parser", "main"]

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def build_parser(extra: Sequence[Registrar] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inferfleet",
        description="Place AI inference replicas across GPU and specialised-accelerator pools "
        "under power budgets, latency SLOs and one cost model.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from inferfleet.cli import crds, plan, run

    plan.register(sub)
    crds.register(sub)
    run.register(sub)
    for register in extra:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None, extra: Sequence[Registrar] = ()) -> int:
    parser = build_parser(extra)
    args = parser.parse_args(argv)
    try:
        rc: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return rc


if __name__ == "__main__":
    sys.exit(main())
