# shellcheck shell=bash
# Real container runtimes for the test suite: docker (our own dockerd) and rootful podman.
#
# Sourced by .ci/run; defines functions only, so sourcing it changes nothing:
#   containers_install   apt-get installs what is missing (docker.io, podman, runc, catatonit,
#                        mmdebstrap, docker-registry)
#   containers_start     containers.conf for podman, a dockerd of our own, the test images,
#                        a local registry; exports what the tests read (see the end of it)
#   containers_stop      stops all of it and removes its temp dir; safe to call twice (a trap)
# Everything runs as root, as CI does. Nothing here reaches outside this machine except apt's
# own mirror (package installs, and the rootfs builds on a cold cache).
#
# The images are built from rootfs tarballs cached outside the clone, in $MYCLI_CI_CACHE
# (default ${XDG_CACHE_HOME:-$HOME/.cache}/mycli-ci), each named by a hash of what went into
# it (this file's build function, package versions, mirror), so a warm run only re-imports.
# The daemons' stores live in the temp dir and die with it: each run starts from clean stores.

MYCLI_CI_IMAGE_BUSYBOX="localhost/mycli-test/busybox:1"
MYCLI_CI_IMAGE_GIT="localhost/mycli-test/debian-git:bookworm"

containers_install() {
  local pkg need=()
  for pkg in docker.io podman runc catatonit mmdebstrap docker-registry; do
    dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q ' installed$' || need+=("$pkg")
  done
  local t0=$EPOCHREALTIME
  if [ ${#need[@]} -eq 0 ]; then
    _containers_step "install: nothing missing" "$t0"
    return 0
  fi
  # No recommends: docker.io's would bring needrestart and apparmor, podman's buildah and more.
  local log
  log=$(mktemp) || return 1
  if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "containers: apt-get could not install ${need[*]}" >&2
    return 1
  fi
  rm -f "$log"
  _containers_step "install: ${need[*]}" "$t0"
}

containers_start() {
  if [ "$(id -u)" != 0 ]; then
    echo "containers: containers_start needs root (it runs dockerd and rootful podman)" >&2
    return 1
  fi
  [ -z "${MYCLI_CI_CONTAINERS_DIR:-}" ] || containers_stop
  local t0 dir
  dir=$(mktemp -d /tmp/mycli-ci-containers.XXXXXX) || return 1
  export MYCLI_CI_CONTAINERS_DIR="$dir"
  MYCLI_CI_CACHE="${MYCLI_CI_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/mycli-ci}"
  mkdir -p "$MYCLI_CI_CACHE" "$dir/podman" "$dir/docker" "$dir/registry" || return 1

  t0=$EPOCHREALTIME
  _containers_podman_config "$dir/podman" || return 1
  _containers_step "podman: containers.conf, storage in $dir/podman" "$t0"

  t0=$EPOCHREALTIME
  _containers_dockerd "$dir/docker" || { containers_stop; return 1; }
  _containers_step "docker: dockerd $(docker version --format '{{.Server.Version}}' 2>/dev/null) on $DOCKER_HOST" "$t0"

  local busybox_tar git_tar
  t0=$EPOCHREALTIME
  busybox_tar=$(_containers_cached busybox _containers_rootfs_busybox "$(_containers_apt_candidate busybox-static)") ||
    { containers_stop; return 1; }
  _containers_step "rootfs busybox: ${busybox_tar##*/}" "$t0"
  t0=$EPOCHREALTIME
  git_tar=$(_containers_cached debian-git-bookworm _containers_rootfs_debian_git \
    "$(mmdebstrap --version 2>/dev/null) $(_containers_debian_sources | xargs -r cat)") ||
    { containers_stop; return 1; }
  _containers_step "rootfs debian-git: ${git_tar##*/}" "$t0"

  t0=$EPOCHREALTIME
  _containers_import "$busybox_tar" "$MYCLI_CI_IMAGE_BUSYBOX" "$git_tar" "$MYCLI_CI_IMAGE_GIT" ||
    { containers_stop; return 1; }
  _containers_step "images imported into docker and podman: $MYCLI_CI_IMAGE_BUSYBOX $MYCLI_CI_IMAGE_GIT" "$t0"

  t0=$EPOCHREALTIME
  _containers_registry "$dir/registry" "$busybox_tar" || { containers_stop; return 1; }
  _containers_step "registry: $MYCLI_TEST_REGISTRY serves $MYCLI_TEST_REGISTRY_IMAGE" "$t0"

  export MYCLI_TEST_DOCKER=1 MYCLI_TEST_PODMAN=1
  export MYCLI_TEST_IMAGE_BUSYBOX="$MYCLI_CI_IMAGE_BUSYBOX" MYCLI_TEST_IMAGE_GIT="$MYCLI_CI_IMAGE_GIT"
}

containers_stop() {
  local dir="${MYCLI_CI_CONTAINERS_DIR:-}"
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  # Containers first: their shims (docker) and conmon processes (podman) outlive the daemons.
  if [ -S "$dir/docker/docker.sock" ]; then
    DOCKER_HOST="unix://$dir/docker/docker.sock" docker ps -aq 2>/dev/null |
      xargs -r env DOCKER_HOST="unix://$dir/docker/docker.sock" docker rm -f >/dev/null 2>&1 || true
  fi
  if [ -f "$dir/podman/containers.conf" ]; then
    CONTAINERS_CONF="$dir/podman/containers.conf" CONTAINERS_STORAGE_CONF="$dir/podman/storage.conf" \
      podman rm -af -t 0 >/dev/null 2>&1 || true
  fi
  _containers_kill_pidfile "$dir/registry/registry.pid" 5
  _containers_kill_pidfile "$dir/docker/dockerd.pid" 20
  # overlay mounts left behind (podman's storage home is itself a mount): deepest first
  awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r mnt; do umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true; done
  rm -rf "$dir" || true
  unset MYCLI_CI_CONTAINERS_DIR DOCKER_HOST CONTAINERS_CONF CONTAINERS_STORAGE_CONF CONTAINERS_REGISTRIES_CONF
  unset MYCLI_TEST_DOCKER MYCLI_TEST_PODMAN MYCLI_TEST_IMAGE_BUSYBOX MYCLI_TEST_IMAGE_GIT
  unset MYCLI_TEST_REGISTRY MYCLI_TEST_REGISTRY_IMAGE MYCLI_TEST_REGISTRY_MISSING
  echo "containers: stopped, $dir removed"
}

# --- helpers ---------------------------------------------------------------------------------

_containers_step() {  # MESSAGE START_EPOCHREALTIME
  awk -v a="$2" -v b="$EPOCHREALTIME" -v m="$1" 'BEGIN { printf "containers: %s (%.1f s)\n", m, b - a }'
}

_containers_podman_config() {  # DIR
  # runc: crun 1.8 refuses this hybrid cgroup layout. default_ulimits = []: podman raises
  # RLIMIT_NOFILE/NPROC by default, which needs CAP_SYS_RESOURCE these VMs lack. netns none:
  # like our dockerd (--bridge=none), a container without --network gets only loopback and
  # podman creates no CNI bridge or iptables rules on the host. tmp_dir, file locks and storage
  # of our own: nothing shared with another podman on this machine (its SHM locks included).
  cat >"$1/containers.conf" <<EOF || return 1
[containers]
default_ulimits = []
netns = "none"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$1/tmp"
lock_type = "file"
EOF
  cat >"$1/storage.conf" <<EOF || return 1
[storage]
driver = "overlay"
graphroot = "$1/storage"
runroot = "$1/run"
EOF
  export CONTAINERS_CONF="$1/containers.conf" CONTAINERS_STORAGE_CONF="$1/storage.conf"
}

_containers_dockerd() {  # DIR
  local dir=$1 i
  echo '{}' >"$dir/daemon.json"  # not /etc/docker/daemon.json: its settings could clash with ours
  dockerd --config-file "$dir/daemon.json" --data-root "$dir/root" --exec-root "$dir/exec" \
    --host "unix://$dir/docker.sock" --pidfile "$dir/docker.pid" \
    --bridge=none --iptables=false --ip6tables=false --userland-proxy=false --log-level=warn \
    >"$dir/dockerd.log" 2>&1 </dev/null &
  echo $! >"$dir/dockerd.pid"  # ours, not dockerd's --pidfile: that one exists only once it is up
  export DOCKER_HOST="unix://$dir/docker.sock"
  for i in $(seq 300); do
    [ -S "$dir/docker.sock" ] && docker version >/dev/null 2>&1 && return 0
    if ! kill -0 "$(cat "$dir/dockerd.pid")" 2>/dev/null; then
      echo "containers: dockerd exited while starting; last lines of $dir/dockerd.log:" >&2
      tail -n 20 "$dir/dockerd.log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "containers: dockerd did not answer on $DOCKER_HOST within 30 s; last lines of its log:" >&2
  tail -n 20 "$dir/dockerd.log" >&2
  return 1
}

_containers_kill_pidfile() {  # PIDFILE GRACE_SECONDS
  local pid i
  pid=$(cat "$1" 2>/dev/null) || return 0
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || return 0
  for i in $(seq $(($2 * 10))); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
}

_containers_apt_candidate() {  # PACKAGE -> "Version SHA256" of the version apt would fetch
  local info
  info=$(apt-cache show --no-all-versions "$1" 2>/dev/null | grep -E '^(Version|SHA256):')
  if [ -z "$info" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1
    info=$(apt-cache show --no-all-versions "$1" 2>/dev/null | grep -E '^(Version|SHA256):')
  fi
  [ -n "$info" ] || { echo "containers: apt knows no package $1" >&2; return 1; }
  echo "$info" | tr '\n' ' '
}

_containers_debian_sources() {
  # The host's own Debian sources when they are bookworm's (a CI mirror or proxy keeps working),
  # else mmdebstrap's default mirror.
  local f
  for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    if [ -s "$f" ] && grep -qE '^[^#]*bookworm' "$f"; then
      echo "$f"
      return 0
    fi
  done
}

_containers_cached() {  # NAME BUILD_FUNCTION INPUTS -> prints the path of the cached tarball
  local name=$1 build=$2 inputs=$3 key tar tmp
  [ -n "$inputs" ] || return 1
  key=$( { declare -f "$build"; echo "$inputs"; } | sha256sum | cut -c1-16)
  tar="$MYCLI_CI_CACHE/$name-$key.tar"
  if [ ! -s "$tar" ]; then
    tmp="$MYCLI_CI_CACHE/.$name-$key.$$.tar"
    if ! "$build" "$tmp" >&2; then
      rm -f "$tmp"
      echo "containers: building the $name rootfs failed" >&2
      return 1
    fi
    find "$MYCLI_CI_CACHE" -maxdepth 1 -name "$name-*.tar" -delete  # older builds of this image
    mv "$tmp" "$tar" || return 1  # atomic: a concurrent run sees a whole tarball or none
  fi
  echo "$tar"
}

_containers_rootfs_busybox() {  # OUT_TAR
  # busybox-static's binary and its applet links, nothing else: no git, no curl, no python.
  # The .deb is fetched and unpacked, not installed: busybox-static conflicts with busybox.
  local work
  work=$(mktemp -d) || return 1
  (
    set -e
    cd "$work"
    apt-get download -qq -o APT::Sandbox::User=root busybox-static
    dpkg-deb -x busybox-static_*.deb deb
    mkdir -p root/bin root/etc root/root root/tmp
    chmod 1777 root/tmp
    cp deb/bin/busybox root/bin/busybox
    for applet in $(root/bin/busybox --list-full); do
      [ -e "root/$applet" ] || { mkdir -p "root/${applet%/*}"; ln -s /bin/busybox "root/$applet"; }
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >root/etc/passwd
    printf 'root:x:0:\nnogroup:x:65534:\n' >root/etc/group
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C root -cf "$1" .
  )
  local rc=$?
  rm -rf "$work"
  return $rc
}

_containers_rootfs_debian_git() {  # OUT_TAR
  # Debian bookworm with git and ca-certificates; docs, man pages and translations left out
  # (a third smaller, so quicker to import).
  local sources
  sources=$(_containers_debian_sources)
  SOURCE_DATE_EPOCH=0 mmdebstrap --quiet --variant=apt --include=git,ca-certificates \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    bookworm "$1" ${sources:+"$sources"} </dev/null
}

_containers_import() {  # TAR NAME [TAR NAME...]: into docker and podman at once (2 cores)
  local dir=$MYCLI_CI_CONTAINERS_DIR
  (
    while [ $# -gt 0 ]; do docker import "$1" "$2" >/dev/null || exit 1; shift 2; done
  ) >"$dir/docker/import.log" 2>&1 &
  local docker_job=$!
  (
    while [ $# -gt 0 ]; do podman import -q "$1" "$2" >/dev/null || exit 1; shift 2; done
  ) >"$dir/podman/import.log" 2>&1 &
  local podman_job=$! rc=0
  wait "$docker_job" || { echo "containers: docker import failed:" >&2; cat "$dir/docker/import.log" >&2; rc=1; }
  wait "$podman_job" || { echo "containers: podman import failed:" >&2; cat "$dir/podman/import.log" >&2; rc=1; }
  return $rc
}

_containers_registry() {  # DIR BUSYBOX_TAR
  local dir=$1 port i image
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') ||
    return 1
  cat >"$dir/config.yml" <<EOF || return 1
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
  REGISTRY_HTTP_SECRET=mycli-ci docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 </dev/null &
  echo $! >"$dir/registry.pid"
  for i in $(seq 100); do
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/v2/', timeout=1)" 2>/dev/null && break
    if [ "$i" = 100 ] || ! kill -0 "$(cat "$dir/registry.pid")" 2>/dev/null; then
      echo "containers: docker-registry did not answer on 127.0.0.1:$port; its log:" >&2
      tail -n 20 "$dir/registry.log" >&2
      return 1
    fi
    sleep 0.1
  done
  # podman speaks plain http only to registries marked insecure (docker allows 127.0.0.0/8).
  cat >"$dir/registries.conf" <<EOF || return 1
unqualified-search-registries = ["docker.io"]

[[registry]]
location = "127.0.0.1:$port"
insecure = true
EOF
  export CONTAINERS_REGISTRIES_CONF="$dir/registries.conf"
  # An image of its own (busybox plus a label), pushed, then removed locally: neither store
  # has it, so a run that names it must pull it.
  image="127.0.0.1:$port/mycli-test/pullme:1"
  if ! { docker import --change 'LABEL mycli.test=pullme' "$2" "$image" >/dev/null &&
    docker push -q "$image" >/dev/null && docker rmi "$image" >/dev/null; }; then
    echo "containers: could not push $image to the local registry" >&2
    return 1
  fi
  export MYCLI_TEST_REGISTRY="127.0.0.1:$port" MYCLI_TEST_REGISTRY_IMAGE="$image"
  export MYCLI_TEST_REGISTRY_MISSING="127.0.0.1:$port/mycli-test/absent:1"  # never pushed
}
