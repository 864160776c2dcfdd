#!/usr/bin/env bash
# Builds, from Debian packages, the three base images that Dockerfile and docker-compose.yml
# name, for a machine with a Docker engine but no image registry:
#
#   debian:bookworm-slim  a minimal bookworm root file system (debootstrap --variant=minbase)
#   rust:1-bookworm       that system + gcc/libc6-dev (for the C parts of ring and mimalloc)
#                         + the host's rustup toolchain (Debian's rustc is too old for
#                         edition 2024), laid out like the official image: RUSTUP_HOME=/usr/local/rustup,
#                         CARGO_HOME=/usr/local/cargo, cargo and rustc on the PATH
#   redis:7-bookworm      that system + Debian's redis-server (7.0), running as user redis in /data
#
# With registry access none of this is needed: `docker build` pulls the official images.
# An image that already exists is kept; --force rebuilds all three.
#
# Needs root (debootstrap, chroot), debootstrap, a running Docker engine, a Debian mirror
# (DEBIAN_MIRROR, default deb.debian.org) and, for the rust image, rustup's stable toolchain
# on the host (RUST_TOOLCHAIN_DIR overrides where it is). Certificate authorities the host added
# in /usr/local/share/ca-certificates (e.g. a TLS-inspecting egress proxy's) are installed in
# the rust image too, so that cargo can reach crates.io from inside `docker build` here.
set -euo pipefail

mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
toolchain="${RUST_TOOLCHAIN_DIR:-$(rustc +stable --print sysroot 2>/dev/null || true)}"
force=0
[ "${1:-}" = "--force" ] && force=1

log() { printf '==> %s\n' "$*" >&2; }
need() { command -v "$1" >/dev/null 2>&1 || { echo "error: $1 is required" >&2; exit 1; }; }
have_image() { [ "$force" -eq 0 ] && docker image inspect "$1" >/dev/null 2>&1; }

[ "$(id -u)" -eq 0 ] || { echo "error: run as root (debootstrap and chroot need it)" >&2; exit 1; }
need docker
need debootstrap
docker info >/dev/null 2>&1 || { echo "error: no Docker engine answers (is dockerd running?)" >&2; exit 1; }

work="$(mktemp -d /tmp/cloakroom-base-images.XXXXXX)"
cleanup() {
    # A chroot's /proc may still be mounted if a step failed halfway.
    for m in "$work"/*/proc; do mountpoint -q "$m" 2>/dev/null && umount "$m"; done
    rm -rf "$work"
}
trap cleanup EXIT

rootfs="$work/bookworm"
bootstrap() {
    [ -d "$rootfs" ] && return
    log "debootstrap bookworm (minbase) from $mirror"
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
        || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
    # As in Debian's official images: no apt caches and no docs in image layers.
    chroot "$rootfs" apt-get clean
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* \
        "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/log/*.log
}

# Runs apt-get install inside a copy of the base root file system.
derive() { # dir packages...
    local dir="$1"; shift
    cp -a "$rootfs" "$dir"
    cp /etc/resolv.conf "$dir/etc/resolv.conf"
    mount -t proc proc "$dir/proc"
    DEBIAN_FRONTEND=noninteractive chroot "$dir" sh -c \
        'apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@" && apt-get clean' \
        sh "$@" >"$work/apt.log" 2>&1 || { tail -20 "$work/apt.log" >&2; exit 1; }
    umount "$dir/proc"
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc/* "$dir"/usr/share/man/*
    : >"$dir/etc/resolv.conf"
}

import() { # dir image changes...
    local dir="$1" image="$2"; shift 2
    local changes=()
    for c in "$@"; do changes+=(--change "$c"); done
    log "docker import $image"
    tar -C "$dir" --numeric-owner -c . | docker import "${changes[@]}" - "$image" >/dev/null
}

if ! have_image debian:bookworm-slim; then
    bootstrap
    : >"$rootfs/etc/resolv.conf"
    import "$rootfs" debian:bookworm-slim 'CMD ["bash"]'
fi

if ! have_image rust:1-bookworm; then
    if [ ! -x "$toolchain/bin/cargo" ] || [ ! -x "$toolchain/bin/rustc" ]; then
        echo "error: no Rust toolchain at '$toolchain' (set RUST_TOOLCHAIN_DIR)" >&2
        exit 1
    fi
    bootstrap
    log "rust:1-bookworm: gcc, libc6-dev, pkg-config, ca-certificates + $("$toolchain/bin/rustc" --version)"
    dir="$work/rust"
    derive "$dir" ca-certificates gcc libc6-dev pkg-config make git
    if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$dir/usr/local/share/ca-certificates/"
        chroot "$dir" update-ca-certificates >/dev/null 2>&1
    fi
    name="$(basename "$toolchain")"
    mkdir -p "$dir/usr/local/rustup/toolchains/$name" "$dir/usr/local/cargo/bin"
    # The compiler, cargo and the standard library; not the documentation (share/).
    cp -a "$toolchain/bin" "$toolchain/lib" "$dir/usr/local/rustup/toolchains/$name/"
    [ -d "$toolchain/libexec" ] && cp -a "$toolchain/libexec" "$dir/usr/local/rustup/toolchains/$name/"
    for tool in "$dir/usr/local/rustup/toolchains/$name/bin/"*; do
        ln -s "/usr/local/rustup/toolchains/$name/bin/$(basename "$tool")" "$dir/usr/local/cargo/bin/"
    done
    import "$dir" rust:1-bookworm \
        'ENV RUSTUP_HOME=/usr/local/rustup' \
        'ENV CARGO_HOME=/usr/local/cargo' \
        'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        'CMD ["bash"]'
    rm -rf "$dir"
fi

if ! have_image redis:7-bookworm; then
    bootstrap
    log "redis:7-bookworm: Debian's redis-server"
    dir="$work/redis"
    derive "$dir" redis-server
    mkdir -p "$dir/data"
    chroot "$dir" chown redis:redis /data
    # Like the official image: redis-server without a configuration file, listening on every
    # interface, protected mode off (the official image compiles it off; the network is the
    # boundary).
    import "$dir" redis:7-bookworm \
        'USER redis' \
        'WORKDIR /data' \
        'EXPOSE 6379' \
        'CMD ["redis-server", "--protected-mode", "no"]'
    rm -rf "$dir"
fi

docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E '^(debian:bookworm-slim|rust:1-bookworm|redis:7-bookworm) '
