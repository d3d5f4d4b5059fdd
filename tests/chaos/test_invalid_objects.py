"""The invalid-object table (tests/chaos/invalid_objects.yaml), run three ways: the real API server
(a dry-run create with strict field validation, as kubectl does), ``inferfleet plan`` (a subprocess
on a manifest file of the object) and the operator's own validation (``reconcile.validate``, in
process); all three must agree on each row, refusing it with the same field named, or accepting it.

Then the children the operator would build of every valid row are applied (a server-side dry
run): none is refused.

Fast by batching: every row's object is created against one namespace through one client, and
``plan`` reads every row's file in one run (it reports every problem before failing, each line
naming its file); a row the API server accepts but the operator reports (``expect: operator``)
gets a whole plan of its own, over the examples.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from inferfleet.api.acceleratorclass import AcceleratorClass
from inferfleet.api.inferencepool import InferencePool
from inferfleet.reconcile import children
from inferfleet.reconcile.ports import Snapshot
from inferfleet.reconcile.validate import key_of, validate
from inferfleet_dev.cluster import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.chaos]
ROOT = Path(__file__).resolve().parents[2]
TABLE = Path(__file__).with_name("invalid_objects.yaml")
GROUP, VERSION = "inferfleet.dev", "v1alpha1"
PLURALS = {
    "InferencePool": "inferencepools",
    "AcceleratorClass": "acceleratorclasses",
    "FleetPolicy": "fleetpolicies",
}
BASES = {"InferencePool": "chat-70b", "AcceleratorClass": "h100", "FleetPolicy": "default"}
TEST_NS_LABEL = "inferfleet.dev/test-namespace"  # tests/conftest.py clears leftovers by it


@dataclasses.dataclass(frozen=True)
class Row:
    name: str
    why: str
    kind: str
    set: dict[str, Any]
    unset: tuple[str, ...]
    field: str | None
    message: str
    expect: str  # refused | valid | operator
    server_field: str | None
    operator_pending: str | None
    rules: tuple[str, ...]  # the CEL rules (words of their messages) the row accepts or refuses by

    @staticmethod
    def of(raw: dict[str, Any]) -> Row:
        field = raw.get("field")
        return Row(
            raw["name"],
            raw["why"],
            raw["kind"],
            raw.get("set", {}),
            tuple(raw.get("unset", ())),
            field,
            raw.get("message", ""),
            raw.get("expect", "refused" if field else "valid"),
            raw.get("serverField"),
            raw.get("operatorPending"),
            tuple([raw["rule"]] if isinstance(raw.get("rule"), str) else raw.get("rule", ())),
        )


def rows() -> list[Row]:
    return [Row.of(r) for r in yaml.safe_load(TABLE.read_text())["rows"]]


@functools.cache
def bases() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and BASES.get(doc["kind"]) == doc["metadata"]["name"]:
                out[doc["kind"]] = doc
    return out


def generated(value: Any) -> Any:
    """A table value with its generators ($string, $list, $map) expanded."""
    if isinstance(value, list):
        return [generated(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "$string" in value:
        return value["$string"] * value["$times"] + value.get("$then", "")
    if "$list" in value:
        return [_nth(generated(value["$list"]), i) for i in range(value["$times"])]
    if "$map" in value:
        ((key, item),) = value["$map"].items()
        return {key if i == 0 else f"{key}{i}": generated(item) for i in range(value["$times"])}
    return {k: generated(v) for k, v in value.items()}


def _nth(item: Any, i: int) -> Any:
    if isinstance(item, str):
        return f"{item}{i}"
    if isinstance(item, dict) and isinstance(item.get("name"), str):
        return {**item, "name": f"{item['name']}{i}"}
    return copy.deepcopy(item)


def _walk(obj: Any, path: str) -> tuple[Any, str | int]:
    *parents, last = path.split(".")
    node = obj
    for key in parents:
        node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
    return node, int(last) if last.isdigit() else last


def build(row: Row, namespace: str) -> dict[str, Any]:
    """The row's object: its kind's base example, named after the row, changed as it says."""
    obj = copy.deepcopy(bases()[row.kind])
    obj["metadata"] = {"name": "default" if row.kind == "FleetPolicy" else row.name}
    if row.kind == "InferencePool":
        obj["metadata"]["namespace"] = namespace
    for path, value in row.set.items():
        node, key = _walk(obj, path)
        node[key] = generated(value)
    for path in row.unset:
        node, key = _walk(obj, path)
        del node[key]
    return obj


def names(text: str, field: str) -> bool:
    """The text names exactly this field (not a parent, child or sibling of it)."""
    return re.search(rf"(?<![\w.]){re.escape(field)}(?![\w\[]|\.\w)", text) is not None


# --- the three legs -------------------------------------------------------------------------------


def server_verdicts(api: Any, objects: dict[str, dict[str, Any]], namespace: str) -> dict[str, str | None]:
    """Row name -> the API server's refusal (None: accepted), from dry-run creates."""
    custom = client.CustomObjectsApi(api)
    out: dict[str, str | None] = {}
    for name, obj in objects.items():
        plural = PLURALS[obj["kind"]]
        try:
            if obj["kind"] == "InferencePool":
                custom.create_namespaced_custom_object(
                    GROUP, VERSION, namespace, plural, obj, dry_run="All", field_validation="Strict"
                )
            else:
                custom.create_cluster_custom_object(
                    GROUP, VERSION, plural, obj, dry_run="All", field_validation="Strict"
                )
            out[name] = None
        except ApiException as exc:
            if exc.status == 409:  # AlreadyExists comes after validation: the object was valid
                out[name] = None
                continue
            body = json.loads(exc.body) if exc.body else {}
            causes = (body.get("details") or {}).get("causes") or []
            said = [f"{c.get('field')}: {c.get('message')}" for c in causes]
            out[name] = " | ".join([str(body.get("message", exc.reason)), *said])
    return out


def _plan(*paths: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "inferfleet", "plan", *(f"-f={p}" for p in paths)]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def plan_verdicts(table: list[Row], objects: dict[str, dict[str, Any]], tmp: Path) -> dict[str, str | None]:
    """Row name -> what ``inferfleet plan`` refused (None: accepted), one run over every row's file
    (each valid FleetPolicy in a run of its own: two policies named default are one too many), and
    one whole plan over the examples for each ``expect: operator`` row."""
    alone = [r for r in table if r.kind == "FleetPolicy" and r.expect == "valid"]
    batches = [[r for r in table if r not in alone], *([r] for r in alone)]
    lines: dict[str, list[str]] = {row.name: [] for row in table}
    for i, rows_of_batch in enumerate(batches):
        batch = tmp / f"rows-{i}"
        batch.mkdir()
        for row in rows_of_batch:
            (batch / f"{row.name}.yaml").write_text(yaml.safe_dump(objects[row.name]))
        if i:  # a policy alone is nothing to plan: the base class and pool beside it
            for kind in ("AcceleratorClass", "InferencePool"):
                (batch / f"base-{kind}.yaml").write_text(yaml.safe_dump(bases()[kind]))
        proc = _plan(batch)
        assert "Traceback" not in proc.stderr, proc.stderr
        for line in proc.stderr.splitlines():
            path, _, said = line.removeprefix("error: ").partition(": ")
            if path.startswith(f"{batch}/"):
                lines[Path(path.split(" ")[0]).stem].append(said)
            else:
                assert not path.startswith(str(batch)), line
    out: dict[str, str | None] = {name: "\n".join(said) or None for name, said in lines.items()}
    for row in table:
        if row.expect != "operator":
            continue
        own = tmp / f"{row.name}.yaml"
        own.write_text(yaml.safe_dump(objects[row.name]))
        whole = _plan(ROOT / "examples", own)
        assert "Traceback" not in whole.stderr and whole.returncode in (0, 2), whole.stderr
        said = "\n".join(line for line in (whole.stdout + whole.stderr).splitlines() if row.name in line)
        out[row.name] = said or None
    return out


def operator_verdict(obj: dict[str, Any]) -> str | None:
    """What the operator's validation of one round says of the object (None: valid)."""
    kind = obj["kind"]
    policy = obj if kind == "FleetPolicy" else copy.deepcopy(bases()["FleetPolicy"])
    snapshot = Snapshot(
        pools=[obj] if kind == "InferencePool" else [],
        classes=[obj] if kind == "AcceleratorClass" else [],
        policy=policy,
        nodes=[],
        foreign_used={},
        deployments=[],
        services=[],
    )
    objects = validate(snapshot)
    if kind == "InferencePool":
        return objects.pool_problems.get(key_of(obj))
    if kind == "AcceleratorClass":
        return objects.class_problems.get(obj["metadata"]["name"])
    return objects.policy_problem


# --- the table ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Verdicts:
    server: dict[str, str | None]
    plan: dict[str, str | None]
    objects: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def table_namespace(kube_api: Any) -> Iterator[str]:
    core = client.CoreV1Api(kube_api)
    name = f"it-invalid-objects-{uuid.uuid4().hex[:5]}"
    core.create_namespace({"metadata": {"name": name, "labels": {TEST_NS_LABEL: "true"}}})
    yield name
    core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture(scope="module")
def verdicts(
    kube_api: Any, crds: list[Path], table_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Verdicts:
    table = rows()
    objects = {row.name: build(row, table_namespace) for row in table}
    server = server_verdicts(kube_api, objects, table_namespace)
    plan = plan_verdicts(table, objects, tmp_path_factory.mktemp("invalid-objects"))
    return Verdicts(server, plan, objects)


def test_the_table_is_well_formed() -> None:
    table = rows()
    assert len({r.name for r in table}) == len(table), "row names are unique (they name the objects)"
    assert all(r.expect in ("refused", "valid", "operator") for r in table)
    assert all((r.field is None) == (r.expect == "valid") for r in table)
    assert len(table) >= 210


@pytest.mark.parametrize("row", rows(), ids=lambda r: r.name)
def test_the_api_server_plan_and_the_operator_agree(verdicts: Verdicts, row: Row) -> None:
    server, plan = verdicts.server[row.name], verdicts.plan[row.name]
    operator = operator_verdict(copy.deepcopy(verdicts.objects[row.name]))
    if row.expect == "valid":
        assert (server, plan, operator) == (None, None, None), (server, plan, operator)
        return
    assert row.field is not None
    if row.expect == "refused":
        assert server is not None, f"the API server accepted it ({row.why})"
        field = row.server_field or row.field
        assert names(server, field), f"the API server did not name {field}: {server}"
        assert row.message in server, server
        assert all(rule in server for rule in row.rules), f"not refused by its rule {row.rules}: {server}"
    else:
        assert server is None, f"the API server refused what the operator is to report: {server}"
    assert plan is not None, f"inferfleet plan accepted it ({row.why})"
    assert names(plan, row.field) and row.message in plan, f"plan did not name the field: {plan}"
    if row.operator_pending and operator is None:
        pytest.xfail(f"the operator does not see it yet: {row.operator_pending}")
    assert operator is not None, f"the operator accepted it ({row.why})"
    assert not row.operator_pending, f"the operator now refuses it: drop operatorPending of {row.name}"
    assert names(operator, row.field), f"the operator did not name the field: {operator}"


def test_every_valid_row_yields_children_the_api_server_accepts(
    cluster: Cluster, verdicts: Verdicts, table_namespace: str
) -> None:
    """The operator never writes a child the API server refuses for something the CRD let in: the
    Deployment (of the row's pool on the base class, or of the base pool on the row's class) and
    Service of every valid row, applied as the operator applies them (server-side, field manager
    inferfleet), as a dry run."""
    table = rows()
    base_pool = {**copy.deepcopy(bases()["InferencePool"]), "metadata": {"name": "chat-70b"}}
    base_pool["metadata"]["namespace"] = table_namespace
    pairs = [
        (verdicts.objects[r.name], bases()["AcceleratorClass"])
        for r in table
        if r.expect == "valid" and r.kind == "InferencePool"
    ] + [
        (base_pool, verdicts.objects[r.name])
        for r in table
        if r.expect == "valid" and r.kind == "AcceleratorClass"
    ]
    assert len(pairs) > 40
    items = []
    for pool_doc, class_doc in pairs:
        owned = {**pool_doc, "metadata": {**pool_doc["metadata"], "uid": str(uuid.uuid4())}}
        pool = InferencePool.model_validate(owned)
        cls = AcceleratorClass.model_validate(class_doc)
        items += [children.build_deployment(pool, cls, 1, 1), children.build_service(pool)]
    proc = cluster.kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--field-manager=inferfleet",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("serverside-applied") == len(items)
