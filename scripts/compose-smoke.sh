#!/usr/bin/env bash
# Proves docker-compose.yml end to end, the way a browser uses it: builds the image, brings the
# stack up, checks the BFF's two frontends (the single-page app's files from the image at /app/,
# the resource server's notes pages through the BFF's frontend server at /), logs in as alice
# through the real login form (curl with a cookie jar, following each redirect: /bff/login → the
# auth server's form → POST credentials → /bff/callback), calls the API through the BFF with
# X-CSRF: 1, adds a note through the notes pages' form and reads both notes on the page, restarts
# each container in turn (redis, auth-server, resource-server, bff) and shows the same session
# working again after each (API and page), logs out (BFF, then the provider's sign-out form),
# checks that the session is gone, then runs the same walk in headless Chromium
# (scripts/compose-browser.py) when Debian's chromium and chromium-driver are installed (without
# them, or with COMPOSE_SMOKE_BROWSER=0, that step is skipped with a line saying so), and brings
# the stack down (volumes included), also on failure.
#
# Needs a Docker engine, docker-compose (1.29, or the `docker compose` plugin), curl, python3, and
# the base images the Dockerfile names (pulled from a registry, or made offline by
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
http() {
    curl -sS --max-time 15 -b "$jar" -c "$jar" -D "$work/headers" -o "$work/body" \
        -w '%{http_code} %{redirect_url}\n' "$@"
}
# The auth server's cookies are `__Host-` and `Secure` (the pending sign-in request is bound to
# the browser by one). Browsers keep Secure cookies of http://*.localhost, but curl before 8.x
# keeps them only for `localhost` itself, so they are carried by hand: the Cookie header of the
# `__Host-` cookies the last response set.
issuer_cookies=""
keep_issuer_cookies() {
    local set
    set="$(sed -n 's/^[Ss]et-[Cc]ookie: *\(__Host-cloakroom-op[^=;]*=[^;]*\).*/\1/p' "$work/headers" | tr -d '\r' | paste -sd';' - | sed 's/;/; /g')"
    [ -z "$set" ] || issuer_cookies="${issuer_cookies:+$issuer_cookies; }$set"
}
issuer_http() { http -H "Cookie: $issuer_cookies" "$@"; }
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
# A page navigation, as a browser sends it.
page() { http -H 'Accept: text/html' -H 'Sec-Fetch-Mode: navigate' -H 'Sec-Fetch-Site: same-origin' "$@"; }
body_has() { # text description
    grep -qF -- "$1" "$work/body" || { echo "--- body:" >&2; head -c 2000 "$work/body" >&2; echo >&2; fail "$2"; }
}
# The notes page at / shows alice's notes: the BFF's frontend server reached the resource
# server's pages listener with her token. (Her name comes from the provider's userinfo, checked
# once after login: right after a restart of the auth server, which signs with a new key, its
# userinfo refuses a token the resource server still accepts, and the page shows her subject.)
notes_page_ok() {
    [ "$(page "$bff/" | cut -d' ' -f1)" = 200 ] && grep -qF 'Signed in as <strong>' "$work/body" \
        && grep -qF "<li>$note</li>" "$work/body"
}

started=$SECONDS
log "build (project $project, BFF $bff, issuer $issuer)"
compose build
built=$SECONDS
log "up"
compose up -d
for s in redis auth-server resource-server bff; do wait_for 120 "$s to be healthy" healthy "$s"; done
wait_for 60 "the BFF to be ready" curl -sf --max-time 5 "$bff/readyz"
log "stack up and healthy after $((SECONDS - built))s"

log "frontends, signed out: the single-page app's files at /app/, the notes pages at /"
page "$bff/app/" | expect 200 "GET /app/ (the frontend dir)" >/dev/null
cmp -s "$work/body" static/index.html || fail "GET /app/ is not static/index.html"
http "$bff/app/app.js" | expect 200 "GET /app/app.js" >/dev/null
cmp -s "$work/body" static/app.js || fail "GET /app/app.js is not static/app.js"
page "$bff/app/notes/some-client-route" | expect 200 "GET a client-side route under /app/" >/dev/null
cmp -s "$work/body" static/index.html || fail "a client-side route under /app/ is not index.html"
page "$bff/" | expect 200 "GET / (the notes pages' frontend server)" >/dev/null
body_has 'You are not signed in.' "GET / signed out is not the notes pages' anonymous page"
body_has 'href="/bff/login?returnTo=/"' "GET / signed out has no login link"

log "login: $bff/bff/login → auth server form → POST /login → /bff/callback"
authorize="$(http "$bff/bff/login?returnTo=/app/" | expect 302 "GET /bff/login")"
case "$authorize" in "$issuer/authorize?"*) ;; *) fail "/bff/login redirected to '$authorize', not to $issuer/authorize";; esac
http "$authorize" | expect 200 "GET the login form" >/dev/null
keep_issuer_cookies
[ -n "$issuer_cookies" ] || fail "the authorize page set no __Host-cloakroom-op-req cookie"
grep -q 'action="/login"' "$work/body" || fail "the authorize page has no login form"
request="$(field request)"
[ -n "$request" ] || fail "the login form has no request field"
callback="$(issuer_http -H "Origin: $issuer" --data-urlencode "request=$request" \
    --data-urlencode "username=alice" --data-urlencode "password=alice-password" \
    "$issuer/login" | expect 302 "POST /login")"
keep_issuer_cookies
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

log "notes pages at / for alice: her notes, then a note through the page's form"
page "$bff/" | expect 200 "GET / signed in" >/dev/null
body_has 'Signed in as <strong>alice</strong>' "GET / signed in does not name alice (userinfo through the issuer)"
body_has "<li>$note</li>" "GET / signed in does not list the note added through /api"
csrf_token="$(field csrf_token)"
[ -n "$csrf_token" ] || fail "the notes page has no csrf_token (the BFF's X-Cloakroom-Csrf-Token)"
form_note="compose smoke form $$ $(date -u +%s)"
back="$(http -H "Origin: $bff" -H 'Sec-Fetch-Site: same-origin' -H 'Sec-Fetch-Mode: navigate' \
    --data-urlencode "csrf_token=$csrf_token" --data-urlencode "text=$form_note" \
    "$bff/notes-form" | expect 303 "POST /notes-form")"
[ "$back" = "$bff/" ] || fail "POST /notes-form redirected to '$back', not to /"
http -H "Origin: $bff" -H 'Sec-Fetch-Site: same-origin' --data-urlencode "csrf_token=wrong" \
    --data-urlencode "text=refused" "$bff/notes-form" | expect 403 "POST /notes-form with a wrong form token" >/dev/null
page "$bff/" | expect 200 "GET / after the form" >/dev/null
body_has "<li>$form_note</li>" "the note added through the page's form is not on the page"
api "$bff/api/notes" | expect 200 "GET /api/notes after the form" >/dev/null
grep -qF "$form_note" "$work/body" || fail "the note added through the page's form is not in /api/notes"

for service in redis auth-server resource-server bff; do
    log "restart $service; the same session must work again"
    compose restart "$service" >/dev/null
    wait_for 120 "$service to be healthy again" healthy "$service"
    # Until the restarted service answers (Redis reconnects, the resource server reloads its keys)
    # a request may fail; after a restart of the auth server (a new signing key) the BFF refreshes
    # the token the reloaded resource server refuses.
    wait_for 60 "GET /api/notes to succeed after restarting $service" api_ok
    grep -q "$note" "$work/body" || fail "the note is gone after restarting $service"
    wait_for 60 "the notes page at / to show alice after restarting $service" notes_page_ok
done

log "logout: POST /bff/logout → the provider's sign-out form → back to the BFF"
api -X POST "$bff/bff/logout" | expect 200 "POST /bff/logout" >/dev/null
logout_url="$(sed -n 's/.*"logout_url":"\([^"]*\)".*/\1/p' "$work/body")"
case "$logout_url" in "$issuer/"*) ;; *) fail "logout_url '$logout_url' is not at the issuer";; esac
issuer_http "$logout_url" | expect 200 "GET the sign-out page" >/dev/null
confirm=()
while IFS= read -r name; do
    confirm+=(--data-urlencode "$name=$(field "$name")")
done < <(sed -n 's/.*type="hidden" name="\([^"]*\)".*/\1/p' "$work/body")
[ "${#confirm[@]}" -gt 0 ] || fail "the sign-out page has no form"
back="$(issuer_http -H "Origin: $issuer" "${confirm[@]}" "$issuer/logout" | expect 302 "POST /logout")"
case "$back" in "$bff/"*) ;; *) fail "the provider's sign-out redirected to '$back', not back to the BFF";; esac
api "$bff/bff/user" | expect 401 "GET /bff/user after logout" >/dev/null
page "$bff/" | expect 200 "GET / after logout" >/dev/null
body_has 'You are not signed in.' "GET / after logout still shows a signed-in page"

# The same walk in a real browser, when Debian's chromium and chromium-driver are installed.
if [ "${COMPOSE_SMOKE_BROWSER:-1}" != 0 ] && [ -x "${CHROMEDRIVER:-/usr/bin/chromedriver}" ] \
    && [ -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
    log "headless Chromium: scripts/compose-browser.py"
    scripts/compose-browser.py "$bff" "$issuer" || fail "the Chromium walk failed"
    browser="passed"
else
    log "headless Chromium: SKIPPED (no /usr/bin/chromium + /usr/bin/chromedriver, or COMPOSE_SMOKE_BROWSER=0)"
    browser="skipped"
fi

log "PASSED: build $((built - started))s, up to down $((SECONDS - built))s, Chromium walk $browser"
