"""``python -m inferfleet``: the same as the ``inferfleet`` console script."""

from inferfleet.cli import main

raise SystemExit(main())
