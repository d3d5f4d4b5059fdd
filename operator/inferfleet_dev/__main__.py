"""``python -m inferfleet_dev``: the ``inferfleet`` command with the dev harness's subcommands."""

from inferfleet.cli import main
from inferfleet_dev import devcluster
from inferfleet_dev.simulate import cli as simulate

raise SystemExit(main(extra=(devcluster.register, simulate.register)))
