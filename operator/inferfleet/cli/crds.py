"""``inferfleet crds [--check]``: write the generated files (CRDs, the chart's copy, docs/api.md), or
fail when the committed ones drift from the API models."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    from inferfleet.api import crdgen, docgen

    root = Path(args.root or crdgen.REPO_ROOT).resolve()
    if not (root / "pyproject.toml").is_file():
        print(f"error: --root {root}: not an inferfleet checkout (no pyproject.toml there)", file=sys.stderr)
        return 2
    drift = crdgen.write_all(root, check=args.check) + docgen.write(root, check=args.check)
    if args.check:
        if drift:
            print(
                "generated files drift from the API models; run `inferfleet crds`:",
                *drift,
                sep="\n  ",
                file=sys.stderr,
            )
            return 1
        print("CRDs, the chart's copy and docs/api.md are up to date.")
        return 0
    print(
        "\n".join(f"wrote {p}" for p in drift)
        if drift
        else "CRDs, the chart's copy and docs/api.md are up to date."
    )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "crds",
        help="generate the CRDs, the chart's copy and docs/api.md from the API models",
        description="Generate the CRDs (crds/), the chart's copy and docs/api.md from the API models, "
        "or with --check compare them and write nothing.",
        epilog="exit status: 0 written or up to date; 1 --check found drift (the files are listed on "
        "stderr); 2 --root is not a checkout",
    )
    parser.add_argument("--root", default=None, help="repository root (default: this checkout)")
    parser.add_argument("--check", action="store_true", help="exit 1 if the files drift, write nothing")
    parser.set_defaults(func=_run)
