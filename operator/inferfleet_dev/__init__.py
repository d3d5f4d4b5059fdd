"""The dev harness: a second import package beside the runtime ``inferfleet``, never in its wheel or image.

Owns everything a developer or a test needs around the operator and the operator never does: the
binaries installer (``install``), the local control plane (``cluster``, ``components``, ``pki``,
``procs``), the simulated accelerator nodes on it (``nodes``; the fleet file itself is the runtime's
``inferfleet.api.simulatedfleet``), a real Prometheus (``prometheus``), the fleet simulator serving
vLLM-style metrics (``simulate``), the ``dev-cluster`` subcommand (``devcluster``) and the README demo
(``demo``).  ``python -m inferfleet_dev`` is the ``inferfleet`` command plus these subcommands.  It
imports the runtime; the runtime never imports it.
"""
