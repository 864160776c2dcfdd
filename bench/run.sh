#!/usr/bin/env bash
# The benchmark (README "Benchmark"): builds with the release profile, starts a private Redis and
# the three programs as processes on free loopback ports, and measures direct vs a plain hyper
# proxy vs cloakroom, Redis commands and CPU per request, refresh waits and Redis memory per
# session. Options (all optional): --secs 10 --rounds 3 --warmup-secs 3 --connections 32
# --threads 2 --sessions 1000000 --refresh-samples 10 --waiters 16 --bursts 5.
# Results: stdout and target/bench/results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
need wrk wrk
need redis-server redis-server
need nginx nginx
exec cargo bench --bench bench -- run "$@"
