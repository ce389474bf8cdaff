#!/usr/bin/env bash
# Kept for users of the original template: stops what dev-start.sh started, by process id.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo xtask stop "$@"
