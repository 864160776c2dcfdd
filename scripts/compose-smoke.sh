#!/usr/bin/env bash
# Proves docker-compose.yml end to end, the way a browser uses it: builds the image, brings the
# stack up, logs in as alice through the real login form (curl with a cookie jar, following each
# redirect: /bff/login → the auth server's form → POST credentials → /bff/callback), calls the API
# through the BFF with X-CSRF: 1, restarts each container in turn (redis, auth-server,
# resource-server, bff) and shows the same session working again after each, logs out (BFF, then
# the provider's sign-out form), checks that the session is gone, and brings the stack down
# (volumes included), also on failure.
#
# Needs a Docker engine, docker-compose (1.29, or the `docker compose` plugin), curl, and the
# base images the Dockerfile names (pulled from a registry, or made offline by
# scripts/base-images.sh). Runs on free ports under its own project name, so it neither touches
# nor collides with a stack (or a `cloakroom demo`) already running. Exit 0 when every step passed.
# COMPOSE_SMOKE_LOGS=FILE keeps the logs of every service in FILE.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[compose-smoke %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
fail() { printf '[compose-smoke] FAILED: %s\n' "$*" >&2; exit 1; }

if docker-compose version >/dev/null 2>&1; then
    compose_cmd=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
    compose_cmd=(docker compose)
else
    fail "neither docker-compose nor the docker compose plugin is installed"
fi
command -v curl >/dev/null 2>&1 || fail "curl is required"
docker info >/dev/null 2>&1 || fail "no Docker engine answers"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
project="cloakroom-smoke-$$"
export CLOAKROOM_BFF_PORT="${CLOAKROOM_BFF_PORT:-$(free_port)}"
export CLOAKROOM_AUTH_PORT="${CLOAKROOM_AUTH_PORT:-$(free_port)}"
export CLOAKROOM_SESSION_KEY
CLOAKROOM_SESSION_KEY="$(head -c 32 /dev/urandom | base64)"
export CLOAKROOM_CLIENT_SECRET
CLOAKROOM_CLIENT_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
compose() { "${compose_cmd[@]}" -p "$project" "$@"; }

bff="http://localhost:$CLOAKROOM_BFF_PORT"
issuer="http://auth.localhost:$CLOAKROOM_AUTH_PORT"
work="$(mktemp -d /tmp/compose-smoke.XXXXXX)"
jar="$work/cookies"

cleanup() {
    local rc=$?
    if [ -n "${COMPOSE_SMOKE_LOGS:-}" ]; then
        compose logs --no-color >"$COMPOSE_SMOKE_LOGS" 2>&1 || true
        log "logs of every service: $COMPOSE_SMOKE_LOGS"
    fi
    if [ "$rc" -ne 0 ]; then
        log "logs of the failed run:"
        compose logs --no-color --tail=40 2>&1 || true
    fi
    log "down"
    compose down -v --remove-orphans >/dev/null 2>&1 || true
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# curl against the stack: cookie jar in and out, bounded time, status code on the last line.
# *.localhost resolves to the loopback address in curl itself.
http() { curl -sS --max-time 15 -b "$jar" -c "$jar" -o "$work/body" -w '%{http_code} %{redirect_url}\n' "$@"; }
expect() { # expected-status description; reads "status redirect" from stdin
    local status redirect
    read -r status redirect
    [ "$status" = "$1" ] || { echo "--- body:" >&2; head -c 2000 "$work/body" >&2; echo >&2; fail "$2: HTTP $status, expected $1"; }
    printf '%s' "$redirect"
}
api() { http -H 'X-CSRF: 1' "$@"; }
# The value of the hidden form field $1 in the last response body.
field() { sed -n "s/.*name=\"$1\" value=\"\\([^\"]*\\)\".*/\\1/p" "$work/body" | head -n1; }

wait_for() { # seconds description command...
    local deadline=$((SECONDS + $1)) what="$2"; shift 2
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || fail "timed out after ${deadline}s waiting for $what"
        sleep 1
    done
}
healthy() { # service
    local id
    id="$(compose ps -q "$1")"
    [ -n "$id" ] && [ "$(docker inspect -f '{{.State.Health.Status}}' "$id")" = healthy ]
}
api_ok() { [ "$(api "$bff/api/notes" | cut -d' ' -f1)" = 200 ]; }

started=$SECONDS
log "build (project $project, BFF $bff, issuer $issuer)"
compose build
built=$SECONDS
log "up"
compose up -d
for s in redis auth-server resource-server bff; do wait_for 120 "$s to be healthy" healthy "$s"; done
wait_for 60 "the BFF to be ready" curl -sf --max-time 5 "$bff/readyz"
log "stack up and healthy after $((SECONDS - built))s"

log "login: $bff/bff/login → auth server form → POST /login → /bff/callback"
authorize="$(http "$bff/bff/login?returnTo=/app/" | expect 302 "GET /bff/login")"
case "$authorize" in "$issuer/authorize?"*) ;; *) fail "/bff/login redirected to '$authorize', not to $issuer/authorize";; esac
http "$authorize" | expect 200 "GET the login form" >/dev/null
grep -q 'action="/login"' "$work/body" || fail "the authorize page has no login form"
request="$(field request)"
[ -n "$request" ] || fail "the login form has no request field"
callback="$(http -H "Origin: $issuer" --data-urlencode "request=$request" \
    --data-urlencode "username=alice" --data-urlencode "password=alice-password" \
    "$issuer/login" | expect 302 "POST /login")"
case "$callback" in "$bff/bff/callback?"*) ;; *) fail "the login redirected to '$callback', not to the BFF's callback";; esac
landing="$(http "$callback" | expect 302 "GET /bff/callback")"
[ "$landing" = "$bff/app/" ] || fail "the callback redirected to '$landing', not to returnTo"
grep -q '__Host-cloakroom' "$jar" || fail "no session cookie after the callback"

log "API through the BFF"
api "$bff/bff/user" | expect 200 "GET /bff/user" >/dev/null
grep -q '"preferred_username":"alice"' "$work/body" || fail "/bff/user is not alice: $(cat "$work/body")"
note="compose smoke $$ $(date -u +%s)"
api -H 'Content-Type: application/json' --data "{\"text\":\"$note\"}" "$bff/api/notes" | expect 201 "POST /api/notes" >/dev/null
api "$bff/api/notes" | expect 200 "GET /api/notes" >/dev/null
grep -q "$note" "$work/body" || fail "the new note is not listed"

for service in redis auth-server resource-server bff; do
    log "restart $service; the same session must work again"
    compose restart "$service" >/dev/null
    wait_for 120 "$service to be healthy again" healthy "$service"
    # Until the restarted service answers (Redis reconnects, the resource server reloads its keys)
    # a request may fail; after a restart of the auth server (a new signing key) the BFF refreshes
    # the token the reloaded resource server refuses.
    wait_for 60 "GET /api/notes to succeed after restarting $service" api_ok
    grep -q "$note" "$work/body" || fail "the note is gone after restarting $service"
done

log "logout: POST /bff/logout → the provider's sign-out form → back to the BFF"
api -X POST "$bff/bff/logout" | expect 200 "POST /bff/logout" >/dev/null
logout_url="$(sed -n 's/.*"logout_url":"\([^"]*\)".*/\1/p' "$work/body")"
case "$logout_url" in "$issuer/"*) ;; *) fail "logout_url '$logout_url' is not at the issuer";; esac
http "$logout_url" | expect 200 "GET the sign-out page" >/dev/null
confirm=()
while IFS= read -r name; do
    confirm+=(--data-urlencode "$name=$(field "$name")")
done < <(sed -n 's/.*type="hidden" name="\([^"]*\)".*/\1/p' "$work/body")
[ "${#confirm[@]}" -gt 0 ] || fail "the sign-out page has no form"
back="$(http -H "Origin: $issuer" "${confirm[@]}" "$issuer/logout" | expect 302 "POST /logout")"
case "$back" in "$bff/"*) ;; *) fail "the provider's sign-out redirected to '$back', not back to the BFF";; esac
api "$bff/bff/user" | expect 401 "GET /bff/user after logout" >/dev/null

log "PASSED: build $((built - started))s, up to down $((SECONDS - built))s"
