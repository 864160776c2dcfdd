#!/bin/bash
# The image's HEALTHCHECK (installed as /usr/local/bin/cloakroom-healthcheck; the runtime image
# has no curl): GET /healthz on every server the container's command runs, over bash's
# /dev/tcp, healthy when each answers 200 within 3 seconds.
#
# The command comes from PID 1's arguments (`cloakroom bff`, `cloakroom demo`, …; `docker run
# --init` puts docker-init first, which is skipped the same way). The ports come from the same
# CLOAKROOM_…__LISTEN variables the servers read (the image sets them; a wildcard address is
# checked on loopback). A listen address set only in a --config file is not seen here: set the
# variable as well, or CLOAKROOM_HEALTHCHECK_ADDRS="host:port …" to name the addresses directly.
# Commands that serve nothing (sessions, --help) are always healthy.
set -euo pipefail

addrs=()
if [ -n "${CLOAKROOM_HEALTHCHECK_ADDRS:-}" ]; then
    read -r -a addrs <<<"$CLOAKROOM_HEALTHCHECK_ADDRS"
else
    command=""
    while IFS= read -r -d '' arg; do
        case "$arg" in
            bff | auth-server | resource-server | demo | sessions) command="$arg"; break ;;
        esac
    done </proc/1/cmdline
    bff="${CLOAKROOM_BFF__LISTEN:-127.0.0.1:8080}"
    as="${CLOAKROOM_AUTH_SERVER__LISTEN:-127.0.0.1:8081}"
    rs="${CLOAKROOM_RESOURCE_SERVER__LISTEN:-127.0.0.1:8082}"
    case "$command" in
        bff) addrs=("$bff") ;;
        auth-server)
            # `auth-server revoke` is a one-shot admin command, not a server.
            grep -qz '^revoke$' /proc/1/cmdline && exit 0
            addrs=("$as") ;;
        resource-server) addrs=("$rs") ;;
        demo) addrs=("$bff" "$as" "$rs") ;;
        *) exit 0 ;;
    esac
fi

check() { # host:port
    local host="${1%:*}" port="${1##*:}" status
    host="${host#[}"; host="${host%]}"
    case "$host" in 0.0.0.0 | "") host=127.0.0.1 ;; "::") host=::1 ;; esac
    exec 3<>"/dev/tcp/$host/$port" || return 1
    printf 'GET /healthz HTTP/1.0\r\nHost: %s\r\n\r\n' "$1" >&3
    IFS= read -r -t 3 status <&3 || { exec 3>&-; return 1; }
    exec 3>&-
    case "$status" in
        "HTTP/1."?" 200 "*) return 0 ;;
        *) echo "$1: ${status%$'\r'}" >&2; return 1 ;;
    esac
}

for addr in "${addrs[@]}"; do
    check "$addr" || { echo "unhealthy: $addr" >&2; exit 1; }
done
