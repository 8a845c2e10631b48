#!/usr/bin/env bash
# Build the images the k8s lab runs, without Docker, and leave them as tarballs in
# $VTX_LAB_DIR/img (lab-up.sh imports every tarball there into the node's containerd):
#
#   localhost/vtx-base:bookworm     Debian 12 root made by debootstrap (python3, venv, CA certs)
#   localhost/vtx:lab               deploy/docker/Dockerfile, target prod, FROM that base
#   localhost/vtx-postgresql:15     deploy/lab/images/postgresql.Containerfile
#   localhost/vtx-redis:7           deploy/lab/images/redis.Containerfile
#
# Needs root (debootstrap, buildah's chroot isolation); installs buildah and debootstrap
# with apt when missing. Everything else stays under $VTX_LAB_DIR/vtx-images, and a
# build is skipped when its inputs have not changed since the last one.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
W=${VTX_LAB_DIR:-$HOME/.cache/vtx-k8s-lab}
CACHE=$W/vtx-images
IMG=$W/img
BASE=localhost/vtx-base:bookworm
export BUILDAH_ISOLATION=chroot STORAGE_DRIVER=vfs

log() { printf '[images %(%H:%M:%S)T] %s\n' -1 "$*"; }

bah() { buildah --root "$CACHE/storage" --runroot "$CACHE/run" --storage-driver vfs "$@"; }

install_tools() {
  local missing=()
  command -v buildah >/dev/null || missing+=(buildah)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  if ((${#missing[@]})); then
    log "installing ${missing[*]} (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
}

# The first Debian mirror of the host's own apt sources (deb822 or one-line format).
mirror() {
  local uri
  uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -1 || true)
  [[ -n "$uri" ]] || uri=$(grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}' | head -1 || true)
  [[ -n "$uri" ]] || { echo "no Debian mirror in /etc/apt/sources*" >&2; exit 1; }
  printf '%s\n' "$uri"
}

fingerprint() { cat "$@" | sha256sum | cut -d' ' -f1; }

# A tarball is current when its fingerprint file matches.
current() { [[ -s "$IMG/$1.tar" && "$(cat "$CACHE/$1.fingerprint" 2>/dev/null)" == "$2" ]]; }

export_image() {
  local name=$1 ref=$2 print=$3
  rm -f "$IMG/$name.tar.partial"
  bah push -q "$ref" "docker-archive:$IMG/$name.tar.partial:$ref" >/dev/null
  mv "$IMG/$name.tar.partial" "$IMG/$name.tar"
  printf '%s\n' "$print" >"$CACHE/$name.fingerprint"
  log "$ref -> $IMG/$name.tar ($(du -h "$IMG/$name.tar" | cut -f1))"
}

build_base() {
  if [[ -e "$CACHE/base.done" ]] && bah inspect "$BASE" >/dev/null 2>&1; then
    return
  fi
  local root=$CACHE/rootfs
  log "debootstrap bookworm from $(mirror)"
  rm -rf "$root"
  debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
    bookworm "$root" "$(mirror)" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  local c
  c=$(bah from scratch)
  bah add "$c" "$root" / >/dev/null
  bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$c"
  bah commit -q --rm "$c" "$BASE" >/dev/null
  rm -rf "$root"
  touch "$CACHE/base.done"
  log "built $BASE"
}

build_vtx() {
  local context=$CACHE/context print
  # The image holds the installed package (services/, shared/) and deploy/docker/; the rest
  # of the repository stays out of the context so that editing it does not rebuild.
  print=$(python3 "$HERE/context.py" "$REPO" "$context" "$REPO/deploy/docker/Dockerfile.dockerignore" \
    tests docs bench .github .ci deploy/lab deploy/helm deploy/prometheus)
  if current vtx "$print"; then
    log "localhost/vtx:lab is current ($print)"
    return
  fi
  local volumes=(--volume "$CACHE/pip.conf:/etc/pip.conf:ro") path
  while read -r path; do
    volumes+=(--volume "$path:$path:ro")
  done < <(python3 "$HERE/pipconf.py" "$CACHE/pip.conf")
  log "building localhost/vtx:lab from deploy/docker/Dockerfile (target prod)"
  bah bud -q --format docker --pull=never --layers --build-arg "PYTHON_IMAGE=$BASE" "${volumes[@]}" \
    -f "$context/deploy/docker/Dockerfile" --target prod -t localhost/vtx:lab "$context" \
    >"$CACHE/vtx-build.log" 2>&1 || { tail -40 "$CACHE/vtx-build.log" >&2; exit 1; }
  export_image vtx localhost/vtx:lab "$print"
  prune
}

# Drop what no tagged image needs any more: earlier builds' layers (vfs copies each one
# whole). The newest build's layers stay, as its cache.
prune() {
  local round
  for round in 1 2 3 4 5 6; do
    [[ -n "$(bah images -q --filter dangling=true 2>/dev/null)" ]] || break
    bah rmi --prune >/dev/null 2>&1 || break
    : "$round"
  done
}

build_service() {
  local name=$1 ref=$2 file=$HERE/images/$1.Containerfile print
  print=$(fingerprint "$file" "$HERE"/images/*.sh <(bah inspect --type image --format '{{.FromImageID}}' "$BASE"))
  if current "vtx-$name" "$print"; then
    log "$ref is current"
    return
  fi
  log "building $ref from Debian packages"
  bah bud -q --format docker --pull=never --layers=false --build-arg "BASE_IMAGE=$BASE" -f "$file" -t "$ref" \
    "$HERE/images" >"$CACHE/$name-build.log" 2>&1 || { tail -40 "$CACHE/$name-build.log" >&2; exit 1; }
  export_image "vtx-$name" "$ref" "$print"
}

main() {
  if [[ $(id -u) != 0 ]]; then
    echo "deploy/lab/images.sh needs root (debootstrap, buildah chroot builds)" >&2
    exit 1
  fi
  mkdir -p "$CACHE" "$IMG"
  install_tools
  build_base
  build_service postgresql localhost/vtx-postgresql:15
  build_service redis localhost/vtx-redis:7
  build_vtx
}

main "$@"
