"""Running the operator: configure the runtime, serve its health port, hand the process to kopf.

Owns the one call of ``kopf.run`` (standalone: leadership is our own Lease election, not kopf's
peering) and the health port (``/healthz`` liveness, ``/readyz`` readiness: ``controller/health.py``),
served from launch so a probe never sees a closed port while kopf starts; ``inferfleet run``
parses flags and calls ``serve``.
"""

from __future__ import annotations

import kopf

from inferfleet.controller import handlers
from inferfleet.controller.health import HealthServer
from inferfleet.controller.runtime import Config

__all__ = ["serve"]


def serve(config: Config, health_port: int | None) -> None:
    """Run the operator until it is stopped."""
    handlers.RUNTIME.configure(config)
    server = HealthServer(health_port, handlers.RUNTIME.check).start() if health_port else None
    try:
        kopf.run(
            clusterwide=config.namespace is None,
            namespaces=[config.namespace] if config.namespace else (),
            standalone=True,  # our own Lease-based leader election, not kopf peering
        )
    finally:
        if server is not None:
            server.stop()
