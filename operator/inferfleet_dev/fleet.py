"""The simulated-fleet file: its schema, validation and the fake Node manifests it expands to.

Owns: parsing ``kind: SimulatedFleet`` YAML into typed pools, validating every field with messages
that name the file, the pool and the field (``fleet.yaml: pools[2] (groq): field 'resource': ...``),
and rendering the ``Node`` objects kwok will manage.  Pure: no Kubernetes client, no processes.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "API_VERSION",
    "KIND",
    "KNOWN_RESOURCES",
    "MANAGED_BY",
    "FleetError",
    "Pool",
    "SimulatedFleet",
    "load_fleet",
    "node_manifests",
    "parse_fleet",
]

API_VERSION = "sim.inferfleet.dev/v1alpha1"
KIND = "SimulatedFleet"
CLASS_LABEL = "inferfleet.dev/accelerator-class"
POWER_DOMAIN_LABEL = "inferfleet.dev/power-domain"
POOL_LABEL = "inferfleet.dev/sim-pool"
ZONE_LABEL = "topology.kubernetes.io/zone"
TAINT_KEY = "inferfleet.dev/accelerator"
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
MANAGED_BY = "inferfleet-sim"

# Extended resources of the accelerators we know; a pool may opt out with ``customResource: true``.
KNOWN_RESOURCES = frozenset(
    {
        "nvidia.com/gpu",
        "amd.com/gpu",
        "cerebras.net/wse",
        "groq.com/lpu",
        "aws.amazon.com/neuron",
        "aws.amazon.com/neuroncore",
        "aws.amazon.com/neurondevice",
        "google.com/tpu",
        "habana.ai/gaudi",
        "intel.com/gpu",
        "sambanova.ai/rdu",
    }
)

DEFAULT_CAPACITY: Mapping[str, str] = {"cpu": "192", "memory": "2Ti", "pods": "110"}
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUANTITY = re.compile(
    r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$"
)

_FLEET_FIELDS = frozenset({"apiVersion", "kind", "metadata", "spec"})
_SPEC_FIELDS = frozenset({"pools", "capacity"})
_POOL_FIELDS = frozenset(
    {
        "name",
        "acceleratorClass",
        "count",
        "devicesPerNode",
        "resource",
        "customResource",
        "powerDomain",
        "zone",
        "labels",
        "annotations",
        "taints",
        "capacity",
    }
)
_TAINT_FIELDS = frozenset({"key", "value", "effect"})


class FleetError(ValueError):
    """A fleet file is malformed; the message names the file, the pool and the field."""


@dataclasses.dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str

    def manifest(self) -> dict[str, str]:
        out = {"key": self.key, "effect": self.effect}
        if self.value:
            out["value"] = self.value
        return out


@dataclasses.dataclass(frozen=True)
class Pool:
    """One homogeneous group of fake nodes (one accelerator class in one power domain and zone)."""

    name: str
    accelerator_class: str
    count: int
    devices_per_node: int
    resource: str
    power_domain: str
    zone: str
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    capacity: Mapping[str, str] = dataclasses.field(default_factory=lambda: dict(DEFAULT_CAPACITY))

    def node_names(self, scale: int = 1) -> list[str]:
        return [f"{self.name}-{i}" for i in range(self.count * scale)]


@dataclasses.dataclass(frozen=True)
class SimulatedFleet:
    name: str
    pools: tuple[Pool, ...]
    source: str = "<fleet>"

    def node_count(self, scale: int = 1) -> int:
        return sum(p.count for p in self.pools) * scale


class _Ctx:
    """Builds error messages: ``<file>: pools[i] (name): field 'x': problem``."""

    def __init__(self, source: str, where: str = "") -> None:
        self.source = source
        self.where = where

    def at(self, where: str) -> _Ctx:
        return _Ctx(self.source, where)

    def error(self, field: str, problem: str) -> FleetError:
        parts = [self.source]
        if self.where:
            parts.append(self.where)
        parts.append(f"field '{field}'" if field else "")
        return FleetError(": ".join(p for p in parts if p) + f": {problem}")


def _mapping(ctx: _Ctx, field: str, value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ctx.error(field, f"must be a mapping, got {type(value).__name__}")
    return value


def _check_fields(ctx: _Ctx, field: str, value: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        name = f"{field}.{unknown[0]}" if field else unknown[0]
        raise ctx.error(name, f"unknown field (allowed: {', '.join(sorted(allowed))})")


def _string(
    ctx: _Ctx,
    field: str,
    value: object,
    pattern: re.Pattern[str] | None = None,
    *,
    what: str = "",
    max_len: int = 0,
) -> str:
    if not isinstance(value, str) or not value:
        raise ctx.error(field, f"must be a non-empty string, got {value!r}")
    if max_len and len(value) > max_len:
        raise ctx.error(field, f"{value!r} is longer than {max_len} characters")
    if pattern is not None and not pattern.match(value):
        raise ctx.error(field, f"{value!r} is not {what}")
    return value


def _int(ctx: _Ctx, field: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ctx.error(field, f"must be an integer, got {value!r}")
    if value < minimum:
        raise ctx.error(field, f"must be >= {minimum}, got {value}")
    return value


def _label_key(ctx: _Ctx, field: str, key: object) -> str:
    if not isinstance(key, str) or not key:
        raise ctx.error(field, f"key {key!r} must be a non-empty string")
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        raise ctx.error(field, f"key {key!r}: prefix {prefix!r} is not a DNS subdomain")
    if len(name) > 63 or not _LABEL_NAME.match(name):
        raise ctx.error(field, f"key {key!r}: name part {name!r} is not a valid label name")
    return key


def _labels(ctx: _Ctx, field: str, value: object, check_values: bool) -> dict[str, str]:
    if value is None:
        return {}
    raw = _mapping(ctx, field, value)
    out: dict[str, str] = {}
    for k, v in raw.items():
        key = _label_key(ctx, field, k)
        if not isinstance(v, str):
            raise ctx.error(f"{field}.{key}", f"value must be a string, got {v!r} (quote it)")
        if check_values and (len(v) > 63 or not _LABEL_VALUE.match(v)):
            raise ctx.error(f"{field}.{key}", f"{v!r} is not a valid label value")
        out[key] = v
    return out


def check_resource_name(name: str) -> str | None:
    """Return why ``name`` is not a valid extended resource name, or None if it is."""
    if "/" not in name:
        return f"{name!r} has no domain prefix (extended resources look like 'vendor.com/device')"
    prefix, _, short = name.partition("/")
    if not _DNS_SUBDOMAIN.match(prefix) or "." not in prefix:
        return f"{name!r}: prefix {prefix!r} is not a fully-qualified domain"
    if prefix == "kubernetes.io" or prefix.endswith(".kubernetes.io"):
        return f"{name!r}: the kubernetes.io domain is reserved, not an extended resource"
    if prefix.startswith("requests."):
        return f"{name!r}: prefix 'requests.' is reserved for quota"
    if len(short) > 63 or not _LABEL_NAME.match(short):
        return f"{name!r}: {short!r} is not a valid resource name"
    return None


def _resource(ctx: _Ctx, raw: dict[str, Any]) -> str:
    name = _string(ctx, "resource", raw.get("resource"))
    problem = check_resource_name(name)
    if problem:
        raise ctx.error("resource", problem)
    custom = raw.get("customResource", False)
    if not isinstance(custom, bool):
        raise ctx.error("customResource", f"must be true or false, got {custom!r}")
    if name not in KNOWN_RESOURCES and not custom:
        raise ctx.error(
            "resource",
            f"unknown extended resource {name!r} (known: {', '.join(sorted(KNOWN_RESOURCES))}); "
            "set 'customResource: true' on the pool if the name is intended",
        )
    return name


def _capacity(ctx: _Ctx, field: str, value: object, base: Mapping[str, str]) -> dict[str, str]:
    out = dict(base)
    if value is None:
        return out
    for k, v in _mapping(ctx, field, value).items():
        if k not in ("cpu", "memory", "pods", "ephemeral-storage"):
            raise ctx.error(
                f"{field}.{k}",
                "only cpu, memory, pods and ephemeral-storage may be set "
                "(the accelerator comes from 'resource' and 'devicesPerNode')",
            )
        text = str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
        if not isinstance(text, str) or not _QUANTITY.match(text):
            raise ctx.error(f"{field}.{k}", f"{v!r} is not a Kubernetes quantity (e.g. '192', '2Ti')")
        out[str(k)] = text
    return out


def _taints(ctx: _Ctx, value: object) -> list[Taint]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ctx.error("taints", f"must be a list, got {type(value).__name__}")
    out = []
    for i, item in enumerate(value):
        field = f"taints[{i}]"
        raw = _mapping(ctx, field, item)
        _check_fields(ctx, field, raw, _TAINT_FIELDS)
        key = _label_key(ctx, f"{field}.key", raw.get("key"))
        val = raw.get("value", "")
        if not isinstance(val, str) or (val and not _LABEL_VALUE.match(val)):
            raise ctx.error(f"{field}.value", f"{val!r} is not a valid taint value")
        effect = raw.get("effect")
        if effect not in TAINT_EFFECTS:
            raise ctx.error(f"{field}.effect", f"{effect!r} is not one of {', '.join(TAINT_EFFECTS)}")
        out.append(Taint(key, val, str(effect)))
    return out


def _pool(ctx: _Ctx, raw: dict[str, Any], default_capacity: Mapping[str, str]) -> Pool:
    _check_fields(ctx, "", raw, _POOL_FIELDS)
    name = _string(
        ctx, "name", raw.get("name"), _DNS_LABEL, what="a DNS label (lowercase, digits, '-')", max_len=50
    )
    cls = _string(
        ctx,
        "acceleratorClass",
        raw.get("acceleratorClass", name),
        _LABEL_VALUE,
        what="a valid label value",
        max_len=63,
    )
    count = _int(ctx, "count", raw.get("count"), 0)
    devices = _int(ctx, "devicesPerNode", raw.get("devicesPerNode"), 1)
    resource = _resource(ctx, raw)
    domain = _string(
        ctx, "powerDomain", raw.get("powerDomain"), _LABEL_VALUE, what="a valid label value", max_len=63
    )
    zone = _string(ctx, "zone", raw.get("zone"), _LABEL_VALUE, what="a valid label value", max_len=63)
    taints = [Taint(TAINT_KEY, cls, "NoSchedule"), *_taints(ctx, raw.get("taints"))]
    seen: set[tuple[str, str]] = set()
    for t in taints:
        if (t.key, t.effect) in seen:
            raise ctx.error(
                "taints",
                f"duplicate taint {t.key}:{t.effect} ({TAINT_KEY}=<class>:NoSchedule is always added)",
            )
        seen.add((t.key, t.effect))
    return Pool(
        name=name,
        accelerator_class=cls,
        count=count,
        devices_per_node=devices,
        resource=resource,
        power_domain=domain,
        zone=zone,
        labels=_labels(ctx, "labels", raw.get("labels"), check_values=True),
        annotations=_labels(ctx, "annotations", raw.get("annotations"), check_values=False),
        taints=tuple(taints),
        capacity=_capacity(ctx, "capacity", raw.get("capacity"), default_capacity),
    )


def parse_fleet(doc: object, source: str = "<fleet>") -> SimulatedFleet:
    """Validate one parsed YAML document; raise FleetError naming the offending pool and field."""
    ctx = _Ctx(source)
    if not isinstance(doc, dict):
        raise FleetError(f"{source}: expected a mapping with apiVersion/kind/spec, got {type(doc).__name__}")
    _check_fields(ctx, "", doc, _FLEET_FIELDS)
    if doc.get("apiVersion") != API_VERSION:
        raise ctx.error("apiVersion", f"must be {API_VERSION!r}, got {doc.get('apiVersion')!r}")
    if doc.get("kind") != KIND:
        raise ctx.error("kind", f"must be {KIND!r}, got {doc.get('kind')!r}")
    meta = _mapping(ctx, "metadata", doc.get("metadata") or {})
    name = str(meta.get("name", "fleet"))
    spec = _mapping(ctx, "spec", doc.get("spec"))
    _check_fields(ctx, "spec", spec, _SPEC_FIELDS)
    default_capacity = _capacity(ctx, "spec.capacity", spec.get("capacity"), DEFAULT_CAPACITY)
    raw_pools = spec.get("pools")
    if not isinstance(raw_pools, list) or not raw_pools:
        raise ctx.error("spec.pools", "must be a non-empty list of pools")
    pools: list[Pool] = []
    for i, item in enumerate(raw_pools):
        label = f"pools[{i}]"
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            label += f" ({item['name']})"
        pctx = ctx.at(label)
        pool = _pool(pctx, _mapping(pctx, "", item), default_capacity)
        if any(p.name == pool.name for p in pools):
            raise pctx.error("name", f"duplicate pool name {pool.name!r} (node names derive from it)")
        pools.append(pool)
    return SimulatedFleet(name=name, pools=tuple(pools), source=source)


def load_fleet(path: Path | str) -> SimulatedFleet:
    """Read and validate a fleet file; every problem is a FleetError, never a traceback."""
    path = Path(path)
    source = path.name
    try:
        text = path.read_text()
    except OSError as exc:
        raise FleetError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise FleetError(f"{source}: not valid YAML: {exc}") from None
    if len(docs) != 1:
        raise FleetError(f"{source}: expected exactly one {KIND} document, found {len(docs)}")
    return parse_fleet(docs[0], source)


def node_manifests(fleet: SimulatedFleet, scale: int = 1) -> list[dict[str, Any]]:
    """The Node objects (with status capacity) for every pool, ``count * scale`` nodes each."""
    if scale < 1:
        raise FleetError(f"{fleet.source}: scale must be >= 1, got {scale}")
    nodes: list[dict[str, Any]] = []
    for pool in fleet.pools:
        capacity = {**pool.capacity, pool.resource: str(pool.devices_per_node)}
        labels = {
            **pool.labels,
            CLASS_LABEL: pool.accelerator_class,
            POWER_DOMAIN_LABEL: pool.power_domain,
            ZONE_LABEL: pool.zone,
            POOL_LABEL: pool.name,
            "type": "kwok",
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "app.kubernetes.io/managed-by": MANAGED_BY,
        }
        for node_name in pool.node_names(scale):
            nodes.append(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": node_name,
                        "labels": {**labels, "kubernetes.io/hostname": node_name},
                        "annotations": {**pool.annotations, KWOK_ANNOTATION: "fake"},
                    },
                    "spec": {"taints": [t.manifest() for t in pool.taints]},
                    "status": {"capacity": dict(capacity), "allocatable": dict(capacity)},
                }
            )
    return nodes
