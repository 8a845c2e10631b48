#!/usr/bin/env bash
# `make test-cluster`: the Helm chart on a real single-node Kubernetes (1.20, the k8s lab).
#
#   1. build or reuse the lab: Kubernetes from Debian's sources, etcd, helm 3.18 and
#      kubectl (deploy/lab/k8s/setup.sh; cache in $VTX_LAB_DIR, default ~/.cache/vtx-k8s-lab)
#   2. build or reuse the images with buildah: vtx from deploy/docker/Dockerfile (prod),
#      PostgreSQL 15 and Redis from Debian's packages (deploy/lab/images.sh)
#   3. start the node (deploy/lab/k8s/lab-up.sh), run tests/cluster inside the lab's
#      network namespace, and stop the lab by its own PIDs at the end, also on failure
#
# Needs root (network namespaces, containerd, debootstrap), as CI has. Extra arguments go
# to pytest. Nothing leaves the lab: its pods have no route out of its namespace.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export VTX_LAB_DIR=${VTX_LAB_DIR:-$HOME/.cache/vtx-k8s-lab}
W=$VTX_LAB_DIR
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
started=$(date +%s)

log() { printf '[lab %(%H:%M:%S)T +%ds] %s\n' -1 "$(($(date +%s) - started))" "$*"; }

if [[ $(id -u) != 0 ]]; then
  echo "make test-cluster needs root (network namespaces, containerd, debootstrap)" >&2
  exit 1
fi
if [[ -e /run/netns/k8slab || -e "$W/state/lab.pid" ]]; then
  echo "a k8s lab is already running (netns k8slab or $W/state/lab.pid): stop it first with" >&2
  echo "  bash deploy/lab/k8s/lab-down.sh" >&2
  exit 1
fi

mkdir -p "$W"
log "lab binaries (setup.sh; about 10 minutes the first time, seconds after)"
if ! bash "$HERE/k8s/setup.sh" >"$W/setup.log" 2>&1; then
  tail -30 "$W/setup.log" >&2
  exit 1
fi
log "images (buildah)"
bash "$HERE/images.sh"
# helm 4 for the upgrade step, fetched while the registry is still reachable.
VTX_HELM4=$("$PYTHON" "$REPO/deploy/helm/tools.py")
export VTX_HELM4

stop_lab() {
  local code=$?
  log "stopping the lab"
  bash "$HERE/k8s/lab-down.sh" || true
  log "done (exit $code)"
  exit "$code"
}
trap stop_lab EXIT
trap 'exit 130' INT TERM

log "starting the node"
bash "$HERE/k8s/lab-up.sh" >"$W/lab-up.log" 2>&1 || { cat "$W/lab-up.log" >&2; exit 1; }
log "tests/cluster"
cd "$REPO"
VTX_CLUSTER_TESTS=1 nsenter --net=/run/netns/k8slab -- \
  "$REPO/.venv/bin/pytest" -p no:cacheprovider -x -ra --durations=0 tests/cluster "$@"
