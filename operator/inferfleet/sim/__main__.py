"""``python -m inferfleet.sim``: the ``inferfleet`` command with the dev harness's subcommands."""

from inferfleet.cli import main
from inferfleet.sim import devcluster

raise SystemExit(main(extra=(devcluster.register,)))
