# lib.sh: shared settings for the klab realnode harness (sourced, not run).
# Leaves nothing behind by itself.
# shellcheck shell=bash disable=SC2034

# Where everything built is kept, outside the repository.
KLAB_REALNODE_CACHE=${KLAB_REALNODE_CACHE:-/var/cache/klab-realnode}
# Runtime state of the private dockerd (tmpfs, gone after a reboot anyway).
RN_RUN=/run/klab-realnode
RN_SOCK=$RN_RUN/docker.sock
RN_DOCKER_HOST=unix://$RN_SOCK
# The node image, as `docker import`ed into the private dockerd.
RN_NODE_IMAGE=klab-realnode/node:v1.20.2
RN_K8S_VERSION=v1.20.2
RN_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

rn_log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
rn_die() { printf 'klab-realnode: %s\n' "$*" >&2; exit 1; }

# Debian's source version of kubernetes (names the cache folder). Uses the
# package lists already on the machine; `build` runs apt-get update first when
# they lack deb-src entries.
rn_src_version() {
  apt-cache showsrc kubernetes 2>/dev/null | awk '/^Version:/{print $2; exit}'
}

# The cache folder of the build in use: the one `build` last finished.
rn_current() {
  local cur=$KLAB_REALNODE_CACHE/current
  [[ -e $cur/node.done ]] || rn_die "nothing built yet: run ci/realnode/build"
  readlink -f "$cur"
}

# docker against the private daemon only.
rn_docker() { DOCKER_HOST=$RN_DOCKER_HOST docker "$@"; }

# Import the node rootfs into the private dockerd unless this exact build is
# already there (the image carries a label with the build's stamp).
rn_ensure_node_image() {
  local cur stamp have
  cur=$(rn_current)
  stamp=$(cat "$cur/node.done")
  have=$(rn_docker image inspect -f '{{index .Config.Labels "klab-realnode.stamp"}}' "$RN_NODE_IMAGE" 2>/dev/null || true)
  [[ $have == "$stamp" ]] && return 0
  rn_log "importing node image $RN_NODE_IMAGE ($stamp)"
  tar -C "$cur/node-rootfs" --numeric-owner -c . |
    rn_docker import -c 'ENTRYPOINT ["/usr/local/bin/entrypoint"]' \
      -c "LABEL klab-realnode.stamp=$stamp" -c 'ENV container=docker' - "$RN_NODE_IMAGE" >/dev/null
  rn_docker image prune -f >/dev/null  # the previous build, now untagged
}

# Empty the private daemon: every container (with its anonymous volumes), every custom network
# (and so its bridge on the host), volumes no container holds. Images stay. $1: what to log.
rn_clear_daemon() {
  local ids
  ids=$(rn_docker ps -aq)
  if [[ $ids ]]; then
    rn_log "$1: $(rn_docker ps -a --format '{{.Names}}' | sort | paste -sd' ')"
    xargs -r env DOCKER_HOST="$RN_DOCKER_HOST" docker rm -fv <<<"$ids" >/dev/null
  fi
  rn_docker network ls -q --filter type=custom | xargs -r env DOCKER_HOST="$RN_DOCKER_HOST" docker network rm >/dev/null || true
  rn_docker volume prune -f >/dev/null || true
}
