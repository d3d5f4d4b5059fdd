"""Building blocks shared by every inferfleet API type.

Owns: the strict camelCase base model (unknown fields are errors, as with kubectl's strict field
validation), the decimal and size quantity types (Kubernetes avoids floats in specs, so numbers with
fractions travel as int-or-string), and CEL rules declared once and enforced twice: by the API server
(``x-kubernetes-validations`` in the generated CRD) and by the same check in Python, so ``inferfleet
plan`` rejects what ``kubectl apply`` would; ``name_rule`` makes such a rule of an object's
``metadata.name`` (at the schema root, checked on create).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Final

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

__all__ = [
    "CEL_ERROR",
    "DNS1035_LABEL",
    "DNS1123_LABEL",
    "CelRule",
    "Decimal",
    "Name",
    "Size",
    "Spec",
    "name_rule",
    "parse_decimal",
    "parse_size",
]

_DECIMAL = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,6})?$")
DECIMAL_PATTERN = r"^[0-9]{1,12}(\.[0-9]{1,6})?$"


def parse_decimal(value: Any) -> float:
    """A non-negative decimal given as an integer or a string such as ``"12.29"``; never a YAML float."""
    if isinstance(value, bool):
        raise ValueError('must be a number such as 12 or "12.5", not a boolean')
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"must not be negative, got {value}")
        return float(value)
    if isinstance(value, float):
        raise ValueError(f'write fractional numbers as strings ("{value}"): Kubernetes specs avoid floats')
    if isinstance(value, str) and _DECIMAL.match(value):
        return float(value)
    raise ValueError(f'must be a non-negative decimal such as 12 or "12.5", got {value!r}')


def _format_decimal(value: float) -> int | str:
    return int(value) if float(value).is_integer() else f"{value:.6f}".rstrip("0").rstrip(".")


_INT_OR_STRING: dict[str, Any] = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "x-kubernetes-int-or-string": True,
}

# minimum: the integers the API server reads are never negative (the pattern checks only strings)
Decimal = Annotated[
    float,
    BeforeValidator(parse_decimal),
    PlainSerializer(_format_decimal, return_type=Any),
    WithJsonSchema({**_INT_OR_STRING, "pattern": DECIMAL_PATTERN, "minimum": 0}),
]
"""Non-negative decimal, integer or string (``40``, ``"2.5"``)."""

_SIZE = re.compile(r"^([0-9]{1,9}(?:\.[0-9]{1,6})?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
SIZE_PATTERN = r"^[0-9]{1,9}(\.[0-9]{1,6})?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$"
_SIZE_FACTORS = {
    None: 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
}


def parse_size(value: Any) -> float:
    """A byte size as a Kubernetes quantity (``80Gi``, ``230Mi``, ``44G``) -> bytes."""
    if isinstance(value, (bool, float)):
        raise ValueError(f'must be a size such as "80Gi", got {value!r}')
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"must not be negative, got {value}")
        return float(value)
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            return float(match.group(1)) * _SIZE_FACTORS[match.group(2)]
    raise ValueError(f'must be a size such as "80Gi" or "230Mi", got {value!r}')


def _format_size(value: float) -> int | str:
    for unit in ("Ti", "Gi", "Mi", "Ki"):
        factor = _SIZE_FACTORS[unit]
        if value >= factor and (value / factor).is_integer():
            return f"{int(value / factor)}{unit}"
    return int(value) if value.is_integer() else str(value)


Size = Annotated[
    float,
    BeforeValidator(parse_size),
    PlainSerializer(_format_size, return_type=Any),
    WithJsonSchema({**_INT_OR_STRING, "pattern": SIZE_PATTERN, "minimum": 0}),
]
"""Bytes, as a Kubernetes quantity string (``80Gi``) or an integer."""

DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
"""A DNS-1123 label: at most 63 lower-case letters, digits and '-', beginning and ending
alphanumeric (also always a valid label value)."""
DNS1035_LABEL = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
"""A DNS-1123 label that begins with a letter (Service names)."""

Name = Annotated[
    str,
    Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
]
"""A DNS-1123 label: lower-case letters, digits and '-'."""


CEL_ERROR: Final = "cel_rule"  # the pydantic error type of a failed CelRule; ctx field_path: where


@dataclasses.dataclass(frozen=True)
class CelRule:
    """A cross-field rule: CEL for the API server, the same check in Python for offline use."""

    rule: str
    message: str
    check: Callable[[Any], bool]
    field_path: str | None = None  # e.g. ".maxReplicas": where the API server reports the error
    optional_old_self: bool = False  # the rule sees oldSelf as an optional (none on create)

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule": self.rule, "message": self.message}
        if self.field_path:
            out["fieldPath"] = self.field_path
        if self.optional_old_self:
            out["optionalOldSelf"] = True
        return out


def name_rule(pattern: str, message: str) -> CelRule:
    """A rule on the object's ``metadata.name``, for the schema root (the one place the API server
    lets CEL read ``metadata.name``).

    The API server checks it when an object is created (``optionalOldSelf``: no old object yet):
    names are immutable, so that is checking every name, and an object created before the rule
    existed keeps a writable status and labels (a rule at the root is re-run on every write,
    status included), so the operator can still say why it is invalid.  The Python check runs on
    every object, which is how the operator finds those.  ``pattern`` must hold no quote or backslash
    (it is pasted into a CEL string literal); an object without a name passes offline
    (``validate_object`` reports the missing name itself)."""
    if "'" in pattern or "\\" in pattern:
        raise ValueError(f"pattern {pattern!r} cannot be written as a plain CEL string literal")
    compiled = re.compile(pattern)

    def check(obj: Any) -> bool:
        name = obj.metadata.get("name")
        return not isinstance(name, str) or compiled.fullmatch(name) is not None

    return CelRule(
        f"oldSelf.hasValue() || self.metadata.name.matches('{pattern}')",
        message,
        check,
        ".metadata.name",
        optional_old_self=True,
    )


class Spec(BaseModel):
    """Base of every API object part: camelCase aliases, strict unknown-field rejection, CEL rules."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        validate_default=False,
    )
    cel_rules: ClassVar[tuple[CelRule, ...]] = ()

    @model_validator(mode="after")
    def _check_cel_rules(self) -> Spec:
        for rule in type(self).cel_rules:
            if not rule.check(self):
                # where the API server reports it: validation.describe_errors adds the field path
                raise PydanticCustomError(CEL_ERROR, rule.message, {"field_path": rule.field_path or ""})
        return self

    def to_api(self) -> dict[str, Any]:
        """The object as the API server stores it: camelCase, unset fields omitted."""
        data: dict[str, Any] = self.model_dump(by_alias=True, exclude_none=True, mode="json")
        return data
