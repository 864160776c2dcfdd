#!/usr/bin/env bash
# The soak (README "Soak"): three BFF instances, the auth server and the resource server on one
# private Redis with an append-only file; virtual users log in, call the API, refresh and log
# out while Redis is killed and restarted once and the auth server restarted once.
# Options (all optional): --secs 240 --vus 40 --users 10 --access-ttl-secs 6 --think-ms 100
# --downtime-secs 5 --grace-secs 5. Results: stdout and target/bench/soak.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
need redis-server redis-server
exec cargo bench --bench bench -- soak "$@"
