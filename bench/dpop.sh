#!/usr/bin/env bash
# The signing cost of one DPoP proof per algorithm (README "DPoP"), with the release profile.
# Options (optional): --proofs 20000 --rounds 5.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench bench -- dpop-sign "$@"
