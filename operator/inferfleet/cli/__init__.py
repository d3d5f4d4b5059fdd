"""The ``inferfleet`` command: one entry point, a subcommand per job (``cli.plan``, ``cli.crds``,
``cli.run``, ``cli.version``).

Owns argument parsing and dispatch only, the help printed when no command is given (exit 0) and the
exit statuses every command keeps to (``EXIT_STATUSES``, listed in ``--help``).  Each subcommand's
work lives in its own package, imported when the subcommand runs, so that ``inferfleet plan`` never
pays for kopf or the Kubernetes client.  Other packages (the dev harness, ``inferfleet_dev``) add
their subcommands through ``main(extra=...)``; the runtime never imports them.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Callable, Sequence

__all__ = ["EXIT_STATUSES", "Registrar", "build_parser", "main"]

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

# what each command returns (checked by tests/unit/cli/test_main.py against the commands themselves)
EXIT_STATUSES = {
    0: "success (crds --check: no drift; run: stopped by a signal)",
    1: "failure: crds --check found drift, or a command met an error it could not handle",
    2: "bad usage or input: unknown or conflicting flags, invalid manifests, a kubeconfig or context "
    "that cannot be used (said on stderr, naming the flag, file or field; nothing done)",
    130: "interrupted (Ctrl-C)",
}


def _epilog() -> str:
    lines = ["exit status:"]
    for code, text in EXIT_STATUSES.items():
        lines += textwrap.wrap(text, 78, initial_indent=f"  {code:<5}", subsequent_indent=" " * 7)
    return "\n".join(lines)


def build_parser(extra: Sequence[Registrar] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inferfleet",
        description=textwrap.fill(
            "Place AI inference replicas across GPU and specialised-accelerator pools "
            "under power budgets, latency SLOs and one cost model.",
            78,
        ),
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from inferfleet.cli import crds, plan, run, version

    parser.add_argument("--version", action=version.VersionAction)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    plan.register(sub)
    crds.register(sub)
    run.register(sub)
    version.register(sub)
    for register in extra:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None, extra: Sequence[Registrar] = ()) -> int:
    parser = build_parser(extra)
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:  # no command: the usage, as a request for help (git, kubectl, helm do the same)
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    try:
        rc: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return rc


if __name__ == "__main__":
    sys.exit(main())
