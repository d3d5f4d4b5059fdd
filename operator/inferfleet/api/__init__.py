"""The inferfleet API: the custom resources as pydantic models, the one source of their CRDs.

Owns the API's identity (group and version, each with one meaning); the kinds are registered in
``kinds``, label and annotation keys live in ``labels``.
"""

from typing import Final

__all__ = ["API_VERSION", "GROUP", "VERSION"]

GROUP: Final = "inferfleet.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = "inferfleet.dev/v1alpha1"  # f"{GROUP}/{VERSION}", spelt out for Literal[...] types
