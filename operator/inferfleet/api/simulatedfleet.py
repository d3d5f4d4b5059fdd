"""The SimulatedFleet kind (``sim.inferfleet.dev/v1alpha1``): groups of fake accelerator nodes.

Owns the fleet file's schema as pydantic models on ``api.common`` (the same strict camelCase base as
the other kinds, plus strict types: a count is an integer, never ``"4"``), its rules (known extended
resources, taint effects, DNS names, label keys and values, node quantities), its error messages
(``fleet.yaml: pools[5] (groq): field 'resource': ...``, naming the file, the node group, the field
and the bad value) and the Node objects a fleet renders to (``node_manifests``, pure).  Not a custom
resource: ``inferfleet plan`` reads it as a documented input kind standing for a cluster's nodes, and
the dev harness (``inferfleet_dev``) creates those nodes for kwok.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import yaml
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from inferfleet.api import labels
from inferfleet.api.acceleratorclass import LabelKey, LabelValue
from inferfleet.api.common import Name, Spec

__all__ = [
    "API_VERSION",
    "DEFAULT_CAPACITY",
    "KIND",
    "KNOWN_RESOURCES",
    "KWOK_FAKE",
    "MAX_ENTRIES",
    "MAX_GROUPS",
    "FleetError",
    "NodeGroup",
    "SimulatedFleet",
    "SimulatedFleetSpec",
    "Taint",
    "check_resource_name",
    "load_fleet",
    "node_manifests",
    "parse_fleet",
]

API_VERSION: Final = "sim.inferfleet.dev/v1alpha1"
KIND: Final = "SimulatedFleet"
KWOK_FAKE: Final = "fake"  # the value of labels.KWOK_NODE on every node kwok should manage

# Extended resources of the accelerators we know; a node group may opt out with ``customResource: true``.
KNOWN_RESOURCES: Final = frozenset(
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
DEFAULT_CAPACITY: Final[Mapping[str, str]] = {"cpu": "192", "memory": "2Ti", "pods": "110"}
NODE_RESOURCES: Final = ("cpu", "memory", "pods", "ephemeral-storage")

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_NAME_PART = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
QUANTITY_PATTERN: Final = (
    r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$"
)
_QUANTITY = re.compile(QUANTITY_PATTERN)


class FleetError(ValueError):
    """A fleet is malformed; each of ``problems`` names the file, the node group, the field and the value."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def check_resource_name(name: str) -> str | None:
    """Why ``name`` is not a valid extended resource name, or None if it is."""
    if "/" not in name:
        return f"{name!r} has no domain prefix (extended resources look like 'vendor.com/device')"
    prefix, _, short = name.partition("/")
    if not _DNS_SUBDOMAIN.match(prefix) or "." not in prefix:
        return f"{name!r}: prefix {prefix!r} is not a fully-qualified domain"
    if prefix == "kubernetes.io" or prefix.endswith(".kubernetes.io"):
        return f"{name!r}: the kubernetes.io domain is reserved, not an extended resource"
    if prefix.startswith("requests."):
        return f"{name!r}: prefix 'requests.' is reserved for quota"
    if len(short) > 63 or not _NAME_PART.match(short):
        return f"{name!r}: {short!r} is not a valid resource name"
    return None


def _quantity(value: object) -> object:
    """A node quantity: ``192``, ``"2Ti"``; YAML numbers become their string form."""
    text = str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
    if isinstance(text, str) and not _QUANTITY.match(text):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. '192', '2Ti')")
    return text


def _node_resource(key: object) -> object:
    if isinstance(key, str) and key not in NODE_RESOURCES:
        raise ValueError(
            f"only {', '.join(NODE_RESOURCES)} may be set "
            "(the accelerator comes from 'resource' and 'devicesPerNode')"
        )
    return key


def _label_key(key: str) -> str:
    """The rules of a label, annotation or taint key beyond LabelKey's pattern (as the API server)."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        raise ValueError(f"prefix {prefix!r} is not a DNS subdomain")
    if not _NAME_PART.match(name):
        raise ValueError(f"name part {name!r} must begin and end with a letter or digit")
    return key


Quantity = Annotated[
    str,
    BeforeValidator(_quantity),
    Field(max_length=64),
    WithJsonSchema({"type": "string", "maxLength": 64, "pattern": QUANTITY_PATTERN}),
]
NodeResource = Annotated[
    str, BeforeValidator(_node_resource), WithJsonSchema({"type": "string", "enum": list(NODE_RESOURCES)})
]
Capacity = Annotated[dict[NodeResource, Quantity], Field(max_length=len(NODE_RESOURCES))]
# Bounds that keep the largest fleet file well under 256 KiB (api/sizing.py measures it); the entries
# of every group together are bounded too, so one group may have many or every group a few.
MAX_GROUPS: Final = 64
MAX_ENTRIES: Final = 128  # labels, annotations and taints over all node groups
GroupName = Annotated[Name, Field(max_length=50)]  # room for "-<index>" in a 63-character node name
Label = Annotated[LabelValue, Field(min_length=1)]
Key = Annotated[LabelKey, AfterValidator(_label_key)]


def _pattern(tp: object) -> str:
    """The regular expression of a constrained string type such as ``Name``."""
    for meta in typing.get_args(tp)[1:]:
        for constraint in getattr(meta, "metadata", ()):
            if getattr(constraint, "pattern", None):
                return str(constraint.pattern)
    raise TypeError(f"{tp} has no pattern")


# What a pattern means, for messages: pydantic's own message shows only the regular expression.
_PATTERNS: Final = {
    _pattern(Name): "is not a DNS label (lower-case letters, digits and '-', "
    "beginning and ending alphanumeric)",
    _pattern(LabelValue): "is not a valid label value (letters, digits, '-', '_' and '.', "
    "beginning and ending alphanumeric)",
    _pattern(LabelKey): "is not a valid label key ([prefix/]name)",
}


class _Strict(Spec):
    """A fleet file is read as the API server would read it: no coercion of strings to numbers."""

    model_config = ConfigDict(strict=True)


class Taint(_Strict):
    """A taint added to every node of the group (besides the accelerator taint)."""

    key: Key
    value: LabelValue = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]

    def manifest(self) -> dict[str, str]:
        out = {"key": self.key, "effect": self.effect}
        if self.value:
            out["value"] = self.value
        return out


class NodeGroup(_Strict):
    """``count`` identical fake nodes: one accelerator class in one power domain and zone.

    Field order matters: ``resource`` and ``taints`` are checked against fields declared before them.
    """

    name: GroupName = Field(description="Nodes are named <name>-0, <name>-1, ...")
    accelerator_class: Label = Field(description="Label and taint value; defaults to the name.")
    count: int = Field(ge=0, le=10_000)
    devices_per_node: int = Field(ge=1, le=4096)
    custom_resource: bool = Field(False, description="Allow a resource outside KNOWN_RESOURCES.")
    resource: str = Field(
        max_length=317, description="The accelerator's extended resource, e.g. nvidia.com/gpu."
    )
    power_domain: Label
    zone: Label
    labels: dict[Key, LabelValue] = Field(default_factory=dict, max_length=16)
    annotations: dict[Key, Annotated[str, Field(max_length=128)]] = Field(default_factory=dict, max_length=16)
    taints: list[Taint] = Field(default_factory=list, max_length=8)
    capacity: Capacity | None = Field(None, description="Overrides spec.capacity for this group.")

    @model_validator(mode="before")
    @classmethod
    def _class_defaults_to_name(cls, data: Any) -> Any:
        given = isinstance(data, dict) and ("acceleratorClass" in data or "accelerator_class" in data)
        if isinstance(data, dict) and not given and isinstance(data.get("name"), str):
            return {**data, "acceleratorClass": data["name"]}
        return data

    @field_validator("resource")
    @classmethod
    def _known_resource(cls, name: str, info: ValidationInfo) -> str:
        problem = check_resource_name(name)
        if problem:
            raise ValueError(problem)
        if name not in KNOWN_RESOURCES and not info.data.get("custom_resource", False):
            raise ValueError(
                f"unknown extended resource {name!r} (known: {', '.join(sorted(KNOWN_RESOURCES))}); "
                "set 'customResource: true' on the node group if the name is intended"
            )
        return name

    @field_validator("taints")
    @classmethod
    def _no_duplicate_taint(cls, taints: list[Taint]) -> list[Taint]:
        seen = {(labels.ACCELERATOR_TAINT, "NoSchedule")}
        for t in taints:
            if (t.key, t.effect) in seen:
                raise ValueError(
                    f"duplicate taint {t.key}:{t.effect} "
                    f"({labels.ACCELERATOR_TAINT}=<class>:NoSchedule is always added)"
                )
            seen.add((t.key, t.effect))
        return taints

    def all_taints(self) -> list[Taint]:
        """The accelerator taint (key ACCELERATOR_TAINT, value the class), then the group's own."""
        own = Taint(key=labels.ACCELERATOR_TAINT, value=self.accelerator_class, effect="NoSchedule")
        return [own, *self.taints]

    def node_names(self, scale: int = 1) -> list[str]:
        return [f"{self.name}-{i}" for i in range(self.count * scale)]


class SimulatedFleetSpec(_Strict):
    capacity: Capacity | None = Field(None, description="Ordinary node capacity, per node.")
    pools: list[NodeGroup] = Field(min_length=1, max_length=MAX_GROUPS, description="The node groups.")

    @field_validator("pools")
    @classmethod
    def _unique_names(cls, pools: list[NodeGroup]) -> list[NodeGroup]:
        first: dict[str, int] = {}
        for i, group in enumerate(pools):
            if group.name in first:
                raise ValueError(
                    f"duplicate node group name {group.name!r} in pools[{first[group.name]}] and "
                    f"pools[{i}] (node names derive from it)"
                )
            first[group.name] = i
        entries = sum(len(g.labels) + len(g.annotations) + len(g.taints) for g in pools)
        if entries > MAX_ENTRIES:
            raise ValueError(
                f"at most {MAX_ENTRIES} labels, annotations and taints over all node groups, got {entries}"
            )
        return pools


class SimulatedFleet(_Strict):
    """A whole simulated fleet: the node groups and the default node capacity."""

    api_version: Literal["sim.inferfleet.dev/v1alpha1"]
    kind: Literal["SimulatedFleet"]
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: SimulatedFleetSpec

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", "fleet"))

    @property
    def pools(self) -> list[NodeGroup]:
        return self.spec.pools

    def node_count(self, scale: int = 1) -> int:
        return sum(g.count for g in self.spec.pools) * scale

    def capacity(self, group: NodeGroup) -> dict[str, str]:
        """One node's capacity: the defaults, then spec.capacity, then the group's, then the devices."""
        return {
            **DEFAULT_CAPACITY,
            **(self.spec.capacity or {}),
            **(group.capacity or {}),
            group.resource: str(group.devices_per_node),
        }


def _field(loc: list[str | int]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def _problem(err: Mapping[str, Any], doc: Mapping[str, Any]) -> str:
    """One pydantic error as ``pools[i] (name): field 'x': message, got value``."""
    loc: list[str | int] = list(err["loc"])
    where = ""
    if loc[:2] == ["spec", "pools"] and len(loc) > 2 and isinstance(loc[2], int):
        index = loc[2]
        where = f"pools[{index}]"
        spec = doc.get("spec")
        groups = spec.get("pools") if isinstance(spec, dict) else None
        raw = groups[index] if isinstance(groups, list) and index < len(groups) else None
        if isinstance(raw, dict) and isinstance(raw.get("name"), str):
            where += f" ({raw['name']})"
        loc = loc[3:]
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "string_pattern_mismatch" and err["ctx"]["pattern"] in _PATTERNS:
        msg = f"{err['input']!r} {_PATTERNS[err['ctx']['pattern']]}"
    if loc and loc[-1] == "[key]":  # a mapping's key was refused; the key is in the loc
        msg = f"key {loc[-2]!r}: {msg}".replace(f"key {loc[-2]!r}: {loc[-2]!r} ", f"key {loc[-2]!r} ")
        loc = loc[:-2]
    elif err["type"] == "extra_forbidden":
        msg = "unknown field"
    elif err["type"] == "missing":
        msg = "required field is missing"
    elif repr(err["input"]) not in msg:  # pydantic's own messages do not show the value
        msg += f", got {err['input']!r}"
    field = f"field '{_field(loc)}'" if loc else ""
    return ": ".join(p for p in (where, field, msg) if p)


def parse_fleet(doc: object, source: str = "<fleet>") -> SimulatedFleet:
    """Validate one parsed YAML document; FleetError names the source, node group, field and value."""
    if not isinstance(doc, dict):
        got = type(doc).__name__
        raise FleetError([f"{source}: expected a mapping with apiVersion/kind/spec, got {got}"])
    try:
        return SimulatedFleet.model_validate(doc)
    except ValidationError as exc:
        raise FleetError([f"{source}: {_problem(err, doc)}" for err in exc.errors()]) from None


def load_fleet(path: Path | str) -> SimulatedFleet:
    """Read and validate a fleet file (exactly one document); every problem is a FleetError."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise FleetError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise FleetError([f"{path.name}: not valid YAML: {exc}"]) from None
    if len(docs) != 1:
        raise FleetError([f"{path.name}: expected exactly one {KIND} document, found {len(docs)}"])
    return parse_fleet(docs[0], path.name)


def node_manifests(fleet: SimulatedFleet, scale: int = 1) -> list[dict[str, Any]]:
    """The Node objects (status capacity included, as a kubelet registers) of every group, x ``scale``."""
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    nodes: list[dict[str, Any]] = []
    for group in fleet.spec.pools:
        capacity = fleet.capacity(group)
        node_labels = {
            **group.labels,
            labels.ACCELERATOR_CLASS: group.accelerator_class,
            labels.POWER_DOMAIN: group.power_domain,
            labels.ZONE: group.zone,
            labels.NODE_GROUP: group.name,
            labels.MANAGED_BY: labels.SIM_MANAGER,
            "type": "kwok",
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
        }
        taints = [t.manifest() for t in group.all_taints()]
        for node_name in group.node_names(scale):
            nodes.append(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": node_name,
                        "labels": {**node_labels, "kubernetes.io/hostname": node_name},
                        "annotations": {**group.annotations, labels.KWOK_NODE: KWOK_FAKE},
                    },
                    "spec": {"taints": [dict(t) for t in taints]},
                    "status": {"capacity": dict(capacity), "allocatable": dict(capacity)},
                }
            )
    return nodes
