"""Fixtures of the simulator's unit tests: the example pools and classes as the core sees them."""

from __future__ import annotations

import pytest
from examples import example_docs

from inferfleet.api.acceleratorclass import AcceleratorClass as ApiClass
from inferfleet.api.inferencepool import InferencePool as ApiPool
from inferfleet.core.types import AcceleratorClass, Pool
from inferfleet.translate.objects import to_core_class, to_core_pool


@pytest.fixture(scope="session")
def pools() -> dict[str, Pool]:
    docs = [d for d in example_docs() if d["kind"] == "InferencePool"]
    return {p.key: p for p in (to_core_pool(ApiPool.model_validate(d)) for d in docs)}


@pytest.fixture(scope="session")
def classes() -> dict[str, AcceleratorClass]:
    docs = [d for d in example_docs() if d["kind"] == "AcceleratorClass"]
    return {c.name: c for c in (to_core_class(ApiClass.model_validate(d), ()) for d in docs)}
