"""The parts of a Pod a pool's server template may set: faithful subsets of the core/v1 shapes.

Owns env entries (``value`` or ``valueFrom`` a Secret key, a ConfigMap key or a field of the Pod),
``envFrom`` sources, volumes (emptyDir, ConfigMap, Secret, PersistentVolumeClaim) and their mounts,
the memory-backed ``/dev/shm`` every replica gets unless it is turned off, probes (HTTP GET or TCP
socket: what a model server answers; no exec) and image pull secrets.  Each model is the upstream
type with fewer fields, each field spelt and shaped as upstream spells it, and each rule the API
server would apply to the Pod is a CEL rule here (with its Python twin), so that the Deployment the
operator writes of a valid pool is never refused: what the Pod would refuse, the pool refuses.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Final, Literal

from pydantic import Field

from inferfleet.api.common import DNS1123_LABEL, CelRule, Quantity, Spec

__all__ = [
    "DNS1123_SUBDOMAIN",
    "SHM_PATH",
    "SHM_VOLUME",
    "ConfigMapVolumeSource",
    "EmptyDirVolumeSource",
    "EnvFromSource",
    "EnvVar",
    "EnvVarSource",
    "HTTPGetAction",
    "KeySelector",
    "LocalObjectReference",
    "Capabilities",
    "ContainerSecurityContext",
    "ObjectFieldSelector",
    "PersistentVolumeClaimVolumeSource",
    "PodSecurityContext",
    "Probe",
    "SeccompProfile",
    "SecretVolumeSource",
    "SharedMemory",
    "SourceReference",
    "SubdomainName",
    "TCPSocketAction",
    "Volume",
    "VolumeMount",
]

DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SubdomainName = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS1123_SUBDOMAIN)]
"""The name of a Secret, ConfigMap, ServiceAccount, PriorityClass or RuntimeClass (a DNS subdomain)."""
ENV_NAME = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
CONFIG_KEY = r"^[-._a-zA-Z0-9]+$"
PATH_MAX: Final = 256
# Paths in the letters, digits and punctuation paths and URLs use: bounded like names, so that the
# largest pool still fits client-side kubectl apply (api/sizing.py) however its paths are spelt.
PATH = r"^/[-._~%!$&'()*+,;=:@/a-zA-Z0-9]*$"
URL_PATH = r"^/[-._~%!$&'()*+,;=:@/?a-zA-Z0-9]*$"
RELATIVE_PATH = r"^[-._~%!$&'()*+,;=:@/a-zA-Z0-9]*$"

SHM_VOLUME: Final = "inferfleet-shm"  # the memory-backed emptyDir the operator mounts at SHM_PATH
SHM_PATH: Final = "/dev/shm"


def _one_of(*fields: str) -> str:
    """CEL: exactly one of the fields is set."""
    return " + ".join(f"(has(self.{f}) ? 1 : 0)" for f in fields) + " == 1"


# --- env -------------------------------------------------------------------------------------------


class KeySelector(Spec):
    """One key of a Secret or ConfigMap in the pool's namespace (SecretKeySelector, ConfigMapKeySelector)."""

    name: SubdomainName = Field(description="Name of the Secret or ConfigMap.")
    key: str = Field(min_length=1, max_length=253, pattern=CONFIG_KEY, description="The key to read.")
    optional: bool | None = Field(
        None, description="Start the replica even when the object or key is missing (the variable unset)."
    )


class ObjectFieldSelector(Spec):
    """A field of the replica's own Pod (the downward API)."""

    field_path: Literal[
        "metadata.name",
        "metadata.namespace",
        "metadata.uid",
        "spec.nodeName",
        "spec.serviceAccountName",
        "status.hostIP",
        "status.hostIPs",
        "status.podIP",
        "status.podIPs",
    ] = Field(description="The Pod field, e.g. metadata.name or status.podIP.")


class EnvVarSource(Spec):
    """Where a variable's value comes from: exactly one source."""

    secret_key_ref: KeySelector | None = Field(
        None, description="A key of a Secret (e.g. a model hub token)."
    )
    config_map_key_ref: KeySelector | None = Field(None, description="A key of a ConfigMap.")
    field_ref: ObjectFieldSelector | None = Field(None, description="A field of the replica's Pod.")

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            _one_of("secretKeyRef", "configMapKeyRef", "fieldRef"),
            "valueFrom needs exactly one of secretKeyRef, configMapKeyRef and fieldRef",
            lambda s: sum(x is not None for x in (s.secret_key_ref, s.config_map_key_ref, s.field_ref)) == 1,
        ),
    )


class EnvVar(Spec):
    """One environment variable of the server container: a value, or valueFrom a source."""

    name: str = Field(min_length=1, max_length=253, pattern=ENV_NAME, description="Variable name.")
    value: str = Field("", max_length=8192, description="The value; empty when valueFrom is set.")
    value_from: EnvVarSource | None = Field(
        None, description="Read the value from a Secret, ConfigMap or the Pod."
    )

    def length(self) -> int:
        """Characters toward the env's total: the name, and the value or the name and key it reads."""
        refs = (self.value_from.secret_key_ref, self.value_from.config_map_key_ref) if self.value_from else ()
        return len(self.name) + len(self.value) + sum(len(r.name) + len(r.key) for r in refs if r is not None)

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            "!has(self.valueFrom) || !has(self.value) || self.value == ''",
            "value must be empty when valueFrom is set",
            lambda e: e.value_from is None or e.value == "",
            ".value",
        ),
    )


class SourceReference(Spec):
    """A ConfigMap or Secret in the pool's namespace whose every key becomes a variable."""

    name: SubdomainName = Field(description="Name of the ConfigMap or Secret.")
    optional: bool | None = Field(None, description="Start the replica even when it is missing.")


class EnvFromSource(Spec):
    """Every key of one ConfigMap or Secret as a variable, optionally prefixed."""

    prefix: str | None = Field(
        None, max_length=63, pattern=ENV_NAME, description="Prepended to every key (an env name itself)."
    )
    config_map_ref: SourceReference | None = Field(None, description="The ConfigMap.")
    secret_ref: SourceReference | None = Field(None, description="The Secret.")

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            _one_of("configMapRef", "secretRef"),
            "envFrom needs exactly one of configMapRef and secretRef",
            lambda s: (s.config_map_ref is None) != (s.secret_ref is None),
        ),
    )


# --- volumes ---------------------------------------------------------------------------------------


class EmptyDirVolumeSource(Spec):
    """Scratch space for the replica's lifetime, on the node's disk or (medium Memory) in RAM."""

    medium: Literal["", "Memory"] | None = Field(None, description='"Memory" for a tmpfs; unset: node disk.')
    size_limit: Quantity | None = Field(None, description='Largest size, e.g. "16Gi"; unset: no limit.')


class ConfigMapVolumeSource(Spec):
    """A ConfigMap's keys as files."""

    name: SubdomainName = Field(description="Name of the ConfigMap.")
    optional: bool | None = Field(None, description="Start the replica even when it is missing.")
    default_mode: int | None = Field(None, ge=0, le=0o777, description="File mode bits (decimal 0-511).")


class SecretVolumeSource(Spec):
    """A Secret's keys as files."""

    secret_name: SubdomainName = Field(description="Name of the Secret.")
    optional: bool | None = Field(None, description="Start the replica even when it is missing.")
    default_mode: int | None = Field(None, ge=0, le=0o777, description="File mode bits (decimal 0-511).")


class PersistentVolumeClaimVolumeSource(Spec):
    """A PersistentVolumeClaim in the pool's namespace (e.g. a shared model cache)."""

    claim_name: SubdomainName = Field(description="Name of the PersistentVolumeClaim.")
    read_only: bool | None = Field(None, description="Mount it read-only.")


class Volume(Spec):
    """A volume of the replica's Pod: a name and at most one source (none: an emptyDir)."""

    name: str = Field(
        min_length=1, max_length=63, pattern=DNS1123_LABEL, description="Volume name, for volumeMounts."
    )
    empty_dir: EmptyDirVolumeSource | None = Field(None, description="Scratch space.")
    config_map: ConfigMapVolumeSource | None = Field(None, description="A ConfigMap as files.")
    secret: SecretVolumeSource | None = Field(None, description="A Secret as files.")
    persistent_volume_claim: PersistentVolumeClaimVolumeSource | None = Field(
        None, description="A PersistentVolumeClaim."
    )

    # As in a Pod, a volume without a source is an emptyDir (the API server defaults it so).
    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            _one_of("emptyDir", "configMap", "secret", "persistentVolumeClaim").replace("== 1", "<= 1"),
            "a volume takes at most one of emptyDir, configMap, secret and persistentVolumeClaim "
            "(none: an emptyDir)",
            lambda v: (
                sum(x is not None for x in (v.empty_dir, v.config_map, v.secret, v.persistent_volume_claim))
                <= 1
            ),
        ),
    )


_BACKSTEP = r"(^|/)[.][.](/|$)"


class VolumeMount(Spec):
    """A volume mounted into the server container."""

    name: str = Field(min_length=1, max_length=63, description="The volume's name (in volumes).")
    mount_path: str = Field(
        min_length=1, max_length=PATH_MAX, pattern=PATH, description="Absolute path in the container."
    )
    read_only: bool | None = Field(None, description="Mount it read-only.")
    sub_path: str | None = Field(
        None,
        max_length=PATH_MAX,
        pattern=RELATIVE_PATH,
        description="A path inside the volume to mount instead of its root (relative, without '..').",
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            f"!has(self.subPath) || (!self.subPath.startsWith('/') && !self.subPath.matches('{_BACKSTEP}'))",
            "subPath must be a relative path without '..'",
            lambda m: (
                m.sub_path is None or (not m.sub_path.startswith("/") and ".." not in m.sub_path.split("/"))
            ),
            ".subPath",
        ),
    )


class SharedMemory(Spec):
    """The memory-backed emptyDir mounted at /dev/shm (vLLM's workers exchange tensors through it;
    a container's default /dev/shm is 64 MiB)."""

    enabled: bool = Field(True, description="Mount a memory-backed emptyDir at /dev/shm.")
    size_limit: Quantity | None = Field(
        None, description='Largest size, e.g. "16Gi" (counts as the replica\'s memory); unset: no limit.'
    )


class LocalObjectReference(Spec):
    """An object in the pool's namespace, by name."""

    name: SubdomainName = Field(description="Name of the object.")


# --- probes ----------------------------------------------------------------------------------------


class HTTPGetAction(Spec):
    """An HTTP GET; success is a status of 200-399."""

    path: str = Field(
        "/health", max_length=PATH_MAX, pattern=URL_PATH, description="Path requested (vLLM: /health)."
    )
    port: int | None = Field(None, ge=1, le=65535, description="Port; unset: the server's port.")
    scheme: Literal["HTTP", "HTTPS"] | None = Field(None, description="HTTP (unset) or HTTPS.")


class TCPSocketAction(Spec):
    """A TCP connection; success is that it opens."""

    port: int | None = Field(None, ge=1, le=65535, description="Port; unset: the server's port.")


class Probe(Spec):
    """A probe of the server container: exactly one check, and how often it runs."""

    http_get: HTTPGetAction | None = Field(None, description="An HTTP GET.")
    tcp_socket: TCPSocketAction | None = Field(None, description="A TCP connection.")
    initial_delay_seconds: int | None = Field(
        None, ge=0, le=86_400, description="Wait before the first check."
    )
    period_seconds: int | None = Field(None, ge=1, le=86_400, description="Seconds between checks (10).")
    timeout_seconds: int | None = Field(None, ge=1, le=86_400, description="Seconds a check may take (1).")
    success_threshold: int | None = Field(
        None, ge=1, le=1000, description="Successes in a row that pass (1; startup probes: only 1)."
    )
    failure_threshold: int | None = Field(
        None, ge=1, le=100_000, description="Failures in a row that fail (3)."
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            _one_of("httpGet", "tcpSocket"),
            "a probe needs exactly one of httpGet and tcpSocket",
            lambda p: (p.http_get is None) != (p.tcp_socket is None),
        ),
    )


# --- security contexts -----------------------------------------------------------------------------

Id = Annotated[int, Field(ge=0, le=2**31 - 1)]  # a UID or GID


class SeccompProfile(Spec):
    """The seccomp filter: the runtime's default, none, or a profile file on the node."""

    type: Literal["RuntimeDefault", "Unconfined", "Localhost"] = Field(
        description="RuntimeDefault (what the restricted Pod Security level asks), Unconfined or Localhost."
    )
    localhost_profile: str | None = Field(
        None,
        max_length=PATH_MAX,
        pattern=RELATIVE_PATH,
        description="With Localhost: the profile's path under the kubelet's seccomp directory.",
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            "self.type == 'Localhost' ? has(self.localhostProfile) : !has(self.localhostProfile)",
            "localhostProfile must be set with type Localhost, and only then",
            lambda s: (s.type == "Localhost") == (s.localhost_profile is not None),
            ".localhostProfile",
        ),
    )


class PodSecurityContext(Spec):
    """The replica Pod's security context (a subset of PodSecurityContext)."""

    run_as_user: Id | None = Field(None, description="UID the containers run as.")
    run_as_group: Id | None = Field(None, description="GID the containers run as.")
    run_as_non_root: bool | None = Field(None, description="Refuse to start a container running as UID 0.")
    fs_group: Id | None = Field(None, description="GID that owns the Pod's volumes.")
    supplemental_groups: list[Id] | None = Field(
        None, max_length=16, description="More GIDs for the containers' first process."
    )
    seccomp_profile: SeccompProfile | None = Field(None, description="The seccomp filter of every container.")


CAPABILITY = r"^[A-Z][A-Z0-9_]*$"
Capability = Annotated[str, Field(min_length=1, max_length=32, pattern=CAPABILITY)]


class Capabilities(Spec):
    """Linux capabilities added to or dropped from the runtime's default set (e.g. drop ALL)."""

    add: list[Capability] | None = Field(None, max_length=16, description="Capabilities added.")
    drop: list[Capability] | None = Field(None, max_length=16, description="Capabilities dropped.")


class ContainerSecurityContext(Spec):
    """The server container's security context (a subset of SecurityContext; no privileged mode)."""

    allow_privilege_escalation: bool | None = Field(
        None, description="Whether a process may gain more privileges than its parent (false: no_new_privs)."
    )
    read_only_root_filesystem: bool | None = Field(
        None, description="Mount the image's filesystem read-only."
    )
    run_as_user: Id | None = Field(None, description="UID the server runs as.")
    run_as_group: Id | None = Field(None, description="GID the server runs as.")
    run_as_non_root: bool | None = Field(None, description="Refuse to start as UID 0.")
    capabilities: Capabilities | None = Field(None, description="Capabilities added or dropped.")
    seccomp_profile: SeccompProfile | None = Field(None, description="The server's seccomp filter.")

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        # a Pod refuses no_new_privs beside CAP_SYS_ADMIN (spelt so: SYS_ADMIN it lets in)
        CelRule(
            "!has(self.allowPrivilegeEscalation) || self.allowPrivilegeEscalation || "
            "!has(self.capabilities) || !has(self.capabilities.add) || "
            "!('CAP_SYS_ADMIN' in self.capabilities.add)",
            "allowPrivilegeEscalation cannot be false while capabilities.add has CAP_SYS_ADMIN",
            lambda s: (
                s.allow_privilege_escalation is not False
                or s.capabilities is None
                or "CAP_SYS_ADMIN" not in (s.capabilities.add or [])
            ),
            ".allowPrivilegeEscalation",
        ),
    )
