"""kopf's part: the operator's lifecycle, nothing that watches the fleet.

Owns startup (kopf settings, then ``Runtime.start``) and cleanup (``Runtime.stop``). Liveness and
readiness are not kopf's probes (its endpoint answers 200 whatever a probe handler reports, from a
10 s cache): ``controller/main.py`` serves them from ``Runtime.check``. The fleet is watched once,
by the runtime's watch cache (``kube/informer.py``), which feeds the planning loop's snapshots and
wakes it; kopf keeps no watch of its own: resource handlers here would open a second set of watch
connections for the same objects and throw their bodies away. kopf registers no resource handlers,
so it adds no finalizers and writes nothing, and the operator being down never blocks a deletion.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from inferfleet.controller.runtime import Runtime

__all__ = ["RUNTIME"]

RUNTIME = Runtime()


@kopf.on.startup()
def _startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.level = logging.WARNING
    settings.networking.request_timeout = 30
    # no resource handlers: nothing for kopf to discover, so no watch of CRDs or namespaces either
    settings.scanning.disabled = True
    RUNTIME.start()


@kopf.on.cleanup()
def _cleanup(**_: Any) -> None:
    RUNTIME.stop()
