"""The largest valid object of each kind, built from its schema.

Owns ``largest_object``: every string at its longest (``maxLength``, or the longest the pattern
allows), every list at ``maxItems`` and every map at ``maxProperties`` with distinct entries, every
number at its maximum, recursively, then the few changes the kind's cross-field rules need (a class
has one price, not two), validated by the model.  Client-side ``kubectl apply`` keeps the object's
JSON in the ``kubectl.kubernetes.io/last-applied-configuration`` annotation, and the API server
refuses annotations over 256 KiB (``TOTAL_ANNOTATION_BYTES``): a test holds ``json_bytes`` of each
largest object well under it, so that a bound raised too far fails there instead of in a user's
``kubectl apply``.  Strings without a pattern are ASCII letters (what people write), or, for the
bound no object can pass, the character kubectl's JSON writes longest (``<``, six bytes).
SimulatedFleet is no API object (a file for ``inferfleet plan`` and the dev cluster) but is held
to the same sizes.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import importlib
import json
import re
import string
from collections.abc import Callable
from typing import Any, Final

from pydantic import BaseModel

from inferfleet.api.acceleratorclass import PREFIX_MAX, PROFILE_BUCKETS_TOTAL, QUALIFIED_NAME
from inferfleet.api.common import DNS1123_LABEL
from inferfleet.api.inferencepool import (
    ARGS_TOTAL_LENGTH,
    ENV_TOTAL_LENGTH,
    MAX_INPUT_TOKENS,
    MAX_OUTPUT_TOKENS,
)
from inferfleet.api.kinds import BY_KIND
from inferfleet.api.simulatedfleet import MAX_ENTRIES, SimulatedFleet

__all__ = [
    "KINDS",
    "TOTAL_ANNOTATION_BYTES",
    "UnboundedError",
    "json_bytes",
    "largest",
    "largest_object",
    "longest_match",
    "model_of",
]

TOTAL_ANNOTATION_BYTES: Final = 256 * 1024  # the API server's limit on all of an object's annotations
_TIME: Final = "2006-01-02T15:04:05.999999999+07:00"  # the longest RFC 3339 time
_INT64_MAX: Final = 2**63 - 1
_FLOAT: Final = 1.2345678901234567e300  # as long as a double's JSON gets
_PREFERRED: Final = string.ascii_lowercase + "9876543210" + string.ascii_uppercase + "-_."  # 9: never 0
_PRINTABLE: Final = [chr(c) for c in range(32, 127)]
_sre: Any = importlib.import_module("re._parser")  # the regex parser re itself uses
_MAXREPEAT: Final = _sre.MAXREPEAT
_KEY_NAME: Final = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"  # of a label key, after the prefix


class UnboundedError(ValueError):
    """Strings, lists or maps without a bound, so no object of the kind has a largest size."""

    def __init__(self, paths: list[str]) -> None:
        super().__init__("unbounded: " + ", ".join(paths))
        self.paths = paths


def json_bytes(obj: Any) -> int:
    """Bytes of the object's compact JSON as kubectl writes it into last-applied-configuration (Go's
    encoder: UTF-8, with '<', '>' and '&' escaped as ``\\u003c`` and so on)."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return len(text.encode()) + 5 * sum(text.count(c) for c in "<>&\u2028\u2029")


# --- the longest string a pattern matches ---------------------------------------------------------


def _chars(items: list[tuple[Any, Any]]) -> list[str]:
    """The printable ASCII characters of a character class (parsed ``[...]``), preferred first."""
    allowed: set[str] = set()
    negate = False
    for op, av in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            allowed.add(chr(av))
        elif name == "RANGE":
            allowed.update(chr(c) for c in range(av[0], av[1] + 1))
        elif name == "CATEGORY":
            probe = {"CATEGORY_DIGIT": r"\d", "CATEGORY_WORD": r"\w", "CATEGORY_SPACE": r"\s"}[str(av)]
            allowed.update(c for c in _PRINTABLE if re.fullmatch(probe, c))
        else:
            raise ValueError(f"character class item {name} is not supported")
    if negate:
        allowed = set(_PRINTABLE) - allowed
    return sorted(allowed, key=lambda c: (_PREFERRED.find(c) % 1000 if c in _PREFERRED else 999, c))


def _width(sub: Any) -> int:
    return int(sub.getwidth()[0])


def _gen(items: list[tuple[Any, Any]], budget: int, free: str) -> list[list[str]]:
    """Positions (each its allowed characters) of a long match of a parsed sequence within budget."""
    out: list[list[str]] = []
    minima = [_width(_sre.SubPattern(_sre.State(), [item])) for item in items]
    for i, (op, av) in enumerate(items):
        room = budget - len(out) - sum(minima[i + 1 :])
        name = str(op)
        if name == "AT":
            continue
        if name == "LITERAL":
            out.append([chr(av)])
        elif name == "IN":
            out.append(_chars(av))
        elif name == "ANY":
            out.append([free, *_PREFERRED])
        elif name == "SUBPATTERN":
            out += _gen(list(av[3]), room, free)
        elif name == "BRANCH":
            options: list[list[list[str]]] = [_gen(list(alt), room, free) for alt in av[1]]
            longest: list[list[str]] = max(options, key=len)
            out += longest
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):
            low, high, sub = av
            least = _width(sub)
            if tuple(sub.getwidth()) == (1, 1):  # one character at a time: as many as fit
                out += _gen(list(sub), 1, free) * max(min(room, high), 0)
                continue
            count = 0
            while high == _MAXREPEAT or count < high:
                left = room - max(low - count - 1, 0) * least  # room for the repetitions still owed
                part = _gen(list(sub), left, free)
                if not part or len(part) > left:
                    break
                out += part
                room -= len(part)
                count += 1
        else:
            raise ValueError(f"regular expression item {name} is not supported")
    return out


@functools.lru_cache(maxsize=256)
def _widest(pattern: str) -> int:
    return int(_sre.parse(pattern).getwidth()[1])


@functools.lru_cache(maxsize=256)
def _positions(pattern: str, max_length: int, free: str) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(p) for p in _gen(list(_sre.parse(pattern)), max_length, free))


def longest_match(pattern: str, max_length: int, variant: int = 0, free: str = "a") -> str:
    """The longest string of at most ``max_length`` characters that ``pattern`` matches; ``variant``
    makes strings that differ (for the items of a list or the keys of a map) of the same length;
    ``free`` is the character where the pattern allows any."""
    positions = _positions(pattern, max_length, free)
    chars = [p[0] for p in positions]
    for index in range(len(positions) - 1, -1, -1):  # variant in mixed radix, last position first
        if variant == 0:
            break
        choices = positions[index]
        if len(choices) > 1:
            variant, digit = divmod(variant, len(choices))
            chars[index] = choices[digit]
    text = "".join(chars)
    if not re.search(pattern, text) or variant:
        raise ValueError(f"no string of {max_length} characters found for {pattern!r}")
    return text


# --- the largest value of a schema ----------------------------------------------------------------


def _label_key(variant: int) -> str:
    """The longest label key: a DNS-subdomain prefix of 253 characters, '/', a name of 63."""
    prefix = ".".join([longest_match(DNS1123_LABEL, 63)] * 3) + "." + longest_match(DNS1123_LABEL, 61)
    assert len(prefix) == PREFIX_MAX
    return f"{prefix}/{longest_match(_KEY_NAME, 63, variant)}"


def largest(schema: dict[str, Any], defs: dict[str, Any], *, free: str = "a") -> Any:
    """The largest value a pydantic JSON schema allows (``defs``: its ``$defs``); ``free`` fills
    strings without a pattern.  Raises UnboundedError naming every string, list or map without a bound."""
    builder = _Builder(defs, free)
    value = builder.value(schema, 0, "")
    if builder.unbounded:
        raise UnboundedError(sorted(set(builder.unbounded)))
    return value


@dataclasses.dataclass
class _Builder:
    defs: dict[str, Any]
    free: str
    unbounded: list[str] = dataclasses.field(default_factory=list)

    def value(self, node: dict[str, Any], variant: int, path: str) -> Any:
        if "$ref" in node:  # sibling keys (a default, a description) win, as in api.schema
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            return self.value({**self.defs[node["$ref"].rsplit("/", 1)[-1]], **siblings}, variant, path)
        if "const" in node:
            return node["const"]
        if "enum" in node:
            return max(node["enum"], key=lambda v: len(json.dumps(v)))
        if node.get("x-kubernetes-int-or-string"):
            return self.string({**node, "type": "string"}, variant, path)
        if "anyOf" in node:
            values = [self.value(o, variant, path) for o in node["anyOf"] if o != {"type": "null"}]
            return values[0] if len(values) == 1 else max(values, key=lambda v: len(json.dumps(v)))
        kind = node.get("type")
        if kind == "object":
            return self.object(node, variant, path)
        if kind == "array":
            count = node.get("maxItems")
            if count is None:
                self.unbounded.append(f"{path} (no maxItems)")
                count = 1
            return [self.value(node.get("items", {}), i, f"{path}[]") for i in range(count)]
        if kind == "string":
            return self.string(node, variant, path)
        if kind == "integer":
            high = node.get("maximum", node.get("exclusiveMaximum", _INT64_MAX + 1) - 1)
            low = node.get("minimum", node.get("exclusiveMinimum", -_INT64_MAX - 2) + 1)
            return high if len(str(high)) >= len(str(low)) or high < 0 else low
        if kind == "number":
            return node.get("maximum", _FLOAT)
        if kind == "boolean":
            return False
        self.unbounded.append(f"{path} (no type)")
        return None

    def object(self, node: dict[str, Any], variant: int, path: str) -> dict[str, Any]:
        out = {
            name: self.value(child, variant, f"{path}.{name}".lstrip("."))
            for name, child in node.get("properties", {}).items()
            if name != "metadata"  # an object's metadata: see largest_object
        }
        values = node.get("additionalProperties")
        if isinstance(node.get("patternProperties"), dict):
            values = next(iter(node["patternProperties"].values()))
        if not isinstance(values, dict):
            return out
        count = node.get("maxProperties")
        if count is None:
            self.unbounded.append(f"{path} (no maxProperties)")
            count = 1
        keys = node.get("propertyNames", {})
        if "enum" in keys:
            count = min(count, len(keys["enum"]))
        for i in range(count):
            if "enum" in keys:
                key = str(sorted(keys["enum"], key=len, reverse=True)[i])
            elif keys.get("pattern"):
                key = longest_match(keys["pattern"], keys.get("maxLength", 317), i)
            else:  # every map of ours without a key pattern is keyed by label keys (a CEL rule says so)
                key = _label_key(i)
            out[key] = self.value(values, i, f"{path}[key]")
        return out

    def string(self, node: dict[str, Any], variant: int, path: str) -> str:
        if node.get("format") == "date-time":
            return _TIME
        pattern = node.get("pattern")
        limit = node.get("maxLength")
        if pattern == QUALIFIED_NAME:  # the prefix's bound is a CEL rule, which no pattern can say
            return _label_key(variant)
        if limit is None:
            width = _widest(pattern) if pattern else _MAXREPEAT
            if width >= _MAXREPEAT:
                self.unbounded.append(f"{path} (no maxLength)")
                return "x"
            limit = int(width)
        return longest_match(pattern or ".*", int(limit), variant, self.free)


# --- the largest object of each kind --------------------------------------------------------------


def _set(obj: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = obj
    for key in parents:
        node = node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value


def _within(values: list[str], total: int) -> list[str]:
    """As many of the values as fit in total characters, the last one cut to what is left."""
    out: list[str] = []
    for value in values:
        left = total - sum(map(len, out))
        if left <= 0:
            break
        out.append(value[:left])
    return out


def _pool(obj: dict[str, Any]) -> None:
    server = obj["spec"]["server"]
    server["args"] = _within(server["args"], ARGS_TOTAL_LENGTH)
    env: list[dict[str, Any]] = []
    left = ENV_TOTAL_LENGTH
    for item in server["env"]:  # a value each (free text: the largest), valueFrom not beside it
        if left < len(item["name"]):
            break
        del item["valueFrom"]
        item["value"] = item["value"][: left - len(item["name"])]
        left -= len(item["name"]) + len(item["value"])
        env.append(item)
    server["env"] = env
    for source in server["envFrom"]:
        del source["configMapRef"]  # exactly one source
    for volume in server["volumes"]:  # exactly one source: the largest
        for other in ("emptyDir", "secret", "persistentVolumeClaim"):
            del volume[other]
    for mount, volume in zip(server["volumeMounts"], server["volumes"], strict=True):
        mount["name"] = volume["name"]  # each names a volume
    for probe in ("readinessProbe", "startupProbe"):
        del server[probe]["tcpSocket"]  # exactly one check
    server["startupProbe"]["successThreshold"] = 1
    for context in (server["podSecurityContext"], server["securityContext"]):
        context["seccompProfile"]["type"] = "Localhost"  # the one type with a profile
    server["securityContext"]["allowPrivilegeEscalation"] = True  # beside any capability
    mix = obj["spec"]["demand"]["requestMix"]  # strips of input lengths tiling the whole range
    width = (MAX_INPUT_TOKENS - MAX_OUTPUT_TOKENS) // len(mix)  # each holds its longest output
    for i, bucket in enumerate(mix):
        bucket.update(minInputTokens=i * width, maxInputTokens=(i + 1) * width, minOutputTokens=0)
    mix[-1]["maxInputTokens"] = MAX_INPUT_TOKENS


def _accelerator_class(obj: dict[str, Any]) -> None:
    spec = obj["spec"]
    _set(obj, "spec.price.capitalDollarsPerDevice", _DELETE)  # exactly one price
    for toleration in spec["tolerations"]:
        toleration.update(operator="Equal", effect="NoExecute")  # a value, and tolerationSeconds
    left = PROFILE_BUCKETS_TOTAL
    for profile in spec["profiles"]:
        profile["buckets"] = profile["buckets"][:left]
        left -= len(profile["buckets"])


def _policy(obj: dict[str, Any]) -> None:
    _set(obj, "spec.electricity.pue", "2.999999")  # 1.0-3.0


def _fleet(obj: dict[str, Any]) -> None:
    for group in obj["spec"]["pools"]:  # the longest resource is not one of the known ones
        group.update(customResource=True, resource=_label_key(0))
    left = MAX_ENTRIES
    for part in ("annotations", "taints", "labels"):  # the largest entries first
        for group in obj["spec"]["pools"]:
            entries = group[part]
            kept = list(entries.items() if isinstance(entries, dict) else entries)[:left]
            group[part] = dict(kept) if isinstance(entries, dict) else kept
            left -= len(kept)


_DELETE: Final = object()
_DNS1123_SUBDOMAIN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"  # one label is the longest subdomain
_REPAIRS: Final[dict[str, Callable[[dict[str, Any]], None]]] = {
    "InferencePool": _pool,
    "AcceleratorClass": _accelerator_class,
    "FleetPolicy": _policy,
    "SimulatedFleet": _fleet,
}
KINDS: Final = ("InferencePool", "AcceleratorClass", "FleetPolicy", "SimulatedFleet")


def model_of(kind: str) -> type[BaseModel]:
    """The pydantic model of one of ``KINDS``."""
    return SimulatedFleet if kind == "SimulatedFleet" else BY_KIND[kind].model


def _name_pattern(model: type[BaseModel]) -> str:
    """The pattern of the kind's rule on ``metadata.name`` (``common.name_rule``), else a DNS subdomain."""
    for rule in getattr(model, "cel_rules", ()):
        found = re.fullmatch(r"oldSelf\.hasValue\(\) \|\| self\.metadata\.name\.matches\('(.*)'\)", rule.rule)
        if found:
            return found.group(1)
    return _DNS1123_SUBDOMAIN


def largest_object(kind: str, *, status: bool = False, escaped: bool = False) -> dict[str, Any]:
    """The largest valid object of one of ``KINDS`` as a user applies it (no status unless asked:
    the operator writes that): longest name (and namespace), every field at its largest.  Strings
    without a pattern are ASCII letters, or with ``escaped`` the character JSON writes longest
    (``<``, six bytes as ``\\u003c``).  Raises UnboundedError when a field has no bound, and pydantic's
    ValidationError if the result is invalid (a new cross-field rule needs a change here)."""
    model = model_of(kind)
    schema = model.model_json_schema(mode="validation")
    defs = schema.pop("$defs", {})
    if not status:
        schema["properties"].pop("status", None)
    obj: dict[str, Any] = largest(schema, defs, free="<" if escaped else "a")
    metadata: dict[str, Any] = {"name": longest_match(_name_pattern(model), 253)}
    if kind == "InferencePool":
        metadata["namespace"] = longest_match(DNS1123_LABEL, 63)
    obj = {"apiVersion": obj.pop("apiVersion"), "kind": obj.pop("kind"), "metadata": metadata, **obj}
    repair = _REPAIRS.get(kind)
    if repair:
        repair(obj)
    model.model_validate(copy.deepcopy(obj))
    return obj
