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
import decimal
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
    "QUANTITY_PATTERN",
    "Quantity",
    "Size",
    "Spec",
    "name_rule",
    "parse_decimal",
    "parse_quantity",
    "parse_size",
]

_DECIMAL = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,6})?$")
DECIMAL_PATTERN = r"^[0-9]{1,12}(\.[0-9]{1,6})?$"


INT64_MAX: Final = 2**63 - 1


def _check_int(value: int) -> None:
    """An integer as the API server reads it: JSON past int64 is a number, no integer."""
    if value < 0:
        raise ValueError(f"must not be negative, got {value}")
    if value > INT64_MAX:
        raise ValueError(
            f"must be at most {INT64_MAX} (an int64; write larger values as strings), got {value}"
        )


def parse_decimal(value: Any) -> float:
    """A non-negative decimal given as an integer or a string such as ``"12.29"``; never a YAML float."""
    if isinstance(value, bool):
        raise ValueError('must be a number such as 12 or "12.5", not a boolean')
    if isinstance(value, int):
        _check_int(value)
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

# The upstream Quantity schema (controller-gen's for resource.Quantity: int-or-string and this
# pattern), narrowed to what a request can be: no sign but '+' (a negative request is refused by
# every Pod), and a decimal exponent of at most two digits (the upstream pattern also admits
# "1e1.5" and exponents past int64, which the quantity parser then refuses in the Deployment).
QUANTITY_PATTERN = (
    r"^(\+)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?[0-9]{1,2}))?$"
)
QUANTITY_MAX_LENGTH: Final = 32
_QUANTITY = re.compile(
    r"^\+?(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:(?P<suffix>[KMGTPE]i|[numkMGTPE])|[eE](?P<exponent>[-+]?[0-9]{1,2}))?$"
)
_SUFFIX_FACTORS: dict[str, decimal.Decimal] = {
    "": decimal.Decimal(1),
    **{
        s: decimal.Decimal(10) ** e
        for s, e in zip("numkMGTPE", (-9, -6, -3, 3, 6, 9, 12, 15, 18), strict=True)
    },
    **{f"{s}i": decimal.Decimal(2) ** (10 * i) for i, s in enumerate("KMGTPE", start=1)},
}


def parse_quantity(value: Any) -> decimal.Decimal:
    """A Kubernetes quantity (``4``, ``"0.5"``, ``"500m"``, ``"64G"``, ``"1.5Gi"``, ``"2e3"``) -> its
    exact value: the one parser of every quantity field.  Refuses what the CRD's int-or-string schema
    refuses (a YAML float, a boolean, a negative integer) and what its pattern does not match."""
    if isinstance(value, bool):
        raise ValueError(f'must be a quantity such as 4, "500m" or "64Gi", not a boolean ({value!r})')
    if isinstance(value, float):
        raise ValueError(
            f'write fractional quantities as strings ("{value}") or with a suffix ("{value * 1000:g}m"): '
            "a YAML number with a point is no integer, and a quantity field takes an integer or a string"
        )
    if isinstance(value, int):
        _check_int(value)
        return decimal.Decimal(value)
    if isinstance(value, str) and len(value) <= QUANTITY_MAX_LENGTH:
        match = _QUANTITY.match(value)
        if match:
            number = decimal.Decimal(match["number"])
            if match["exponent"] is not None:
                return number.scaleb(int(match["exponent"]))
            return number * _SUFFIX_FACTORS[match["suffix"] or ""]
    raise ValueError(
        f"must be a non-negative quantity of at most {QUANTITY_MAX_LENGTH} characters such as 4, "
        f'"0.5", "500m", "64G" or "1.5Gi", got {value!r}'
    )


def _quantity_text(value: Any) -> Any:
    """A valid quantity as the text the API server stores (an integer as its digits)."""
    parse_quantity(value)
    return str(value)


_INT_OR_STRING_QUANTITY: dict[str, Any] = {
    **{"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True},
    "pattern": QUANTITY_PATTERN,
    "maxLength": QUANTITY_MAX_LENGTH,
    "minimum": 0,
}

Quantity = Annotated[str, BeforeValidator(_quantity_text), WithJsonSchema(_INT_OR_STRING_QUANTITY)]
"""A Kubernetes quantity kept as written (``"500m"``, ``"1.5Gi"``; an integer as its digits), for
fields copied into a Pod; ``parse_quantity`` gives its value."""


def parse_size(value: Any) -> float:
    """A byte size as a Kubernetes quantity (``80Gi``, ``230Mi``, ``44G``) -> bytes."""
    return float(parse_quantity(value))


def _format_size(value: float) -> int | str:
    for unit in ("Ti", "Gi", "Mi", "Ki"):
        factor = int(_SUFFIX_FACTORS[unit])
        if value >= factor and (value / factor).is_integer():
            return f"{int(value / factor)}{unit}"
    return int(value) if value.is_integer() else str(value)


Size = Annotated[
    float,
    BeforeValidator(parse_size),
    PlainSerializer(_format_size, return_type=Any),
    WithJsonSchema(_INT_OR_STRING_QUANTITY),
]
"""Bytes, as a Kubernetes quantity (``80Gi``, ``"1.5G"``) or an integer (``parse_quantity``)."""

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
