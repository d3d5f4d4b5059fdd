#!/usr/bin/env bash
# For users WITH Docker: a kind cluster plus the kwok controller and the same simulated accelerator
# fleet the local dev cluster has (examples/simulated-fleet/fleet.yaml).
#
# NOT runnable on the project's CI machines (no Docker engine, no image pulls there); CI and the
# integration tests use `inferfleet dev-cluster up` instead, which needs no container runtime.
#
# kind runs the real control plane in a container; kwok runs on this host (built by the installer)
# against kind's API server and manages only nodes annotated kwok.x-k8s.io/node=fake, so kind's own
# node is untouched. Environment: KIND_CLUSTER_NAME (default inferfleet), FLEET, SCALE (default 1).
#
#   scripts/kind-up.sh            # create (or reuse) the kind cluster and add the fake fleet
#   scripts/kind-up.sh down       # remove kwok and the fake nodes, then delete the kind cluster
source "$(dirname "$0")/env.sh"

NAME="${KIND_CLUSTER_NAME:-inferfleet}"
FLEET="${FLEET:-$ROOT/examples/simulated-fleet/fleet.yaml}"
SCALE="${SCALE:-1}"
SIM="kind-$NAME"                       # the dev-cluster name that tracks kwok for this kind cluster
KCFG="$CACHE/clusters/$SIM.kubeconfig"

die() { echo "kind-up: $*" >&2; exit 1; }

if [ "${1:-up}" = "down" ]; then
  python -m inferfleet_dev dev-cluster down --name "$SIM" || true
  command -v kind >/dev/null && kind delete cluster --name "$NAME"
  rm -f "$KCFG"
  exit 0
fi

command -v docker >/dev/null || die "docker not found (this script is for machines with Docker)"
docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (docker info failed)"
command -v kind >/dev/null || die "kind not found: go install sigs.k8s.io/kind@v0.32.0 (or your package manager)"

start=$(date +%s)
if kind get clusters 2>/dev/null | grep -qx "$NAME"; then
  echo "[kind-up] kind cluster '$NAME' exists; reusing it"
else
  kind create cluster --name "$NAME" --wait 180s
fi
mkdir -p "$(dirname "$KCFG")"
kind get kubeconfig --name "$NAME" > "$KCFG"

# kwok (and kubectl) from the installer's cache; no-op when already built
python -m inferfleet_dev.install kwok kubectl
python -m inferfleet_dev dev-cluster up --name "$SIM" --kubeconfig "$KCFG" --fleet "$FLEET" --scale "$SCALE"

echo "[kind-up] ready in $(( $(date +%s) - start ))s"
echo "  export KUBECONFIG=$KCFG"
echo "  status: python -m inferfleet_dev dev-cluster status --name $SIM"
echo "  remove: scripts/kind-up.sh down"
