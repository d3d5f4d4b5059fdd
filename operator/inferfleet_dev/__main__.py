"""``python -m inferfleet_dev``: the ``inferfleet`` command with the dev harness's subcommands."""

from inferfleet.cli import main
from inferfleet_dev import devcluster

raise SystemExit(main(extra=(devcluster.register,)))
