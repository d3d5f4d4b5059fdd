"""Running the operator: configure the runtime and hand the process to kopf.

Owns the one call of ``kopf.run`` (standalone: leadership is our own Lease election, not kopf's
peering) and the liveness endpoint's address; ``inferfleet run`` parses flags and calls ``serve``.
"""

from __future__ import annotations

import kopf

from inferfleet.controller import handlers
from inferfleet.controller.runtime import Config

__all__ = ["serve"]


def serve(config: Config, health_port: int | None) -> None:
    """Run the operator until it is stopped."""
    handlers.RUNTIME.configure(config)
    kopf.run(
        clusterwide=config.namespace is None,
        namespaces=[config.namespace] if config.namespace else (),
        standalone=True,  # our own Lease-based leader election, not kopf peering
        liveness_endpoint=f"http://0.0.0.0:{health_port}/healthz" if health_port else None,
    )
