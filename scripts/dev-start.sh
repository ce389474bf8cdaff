#!/usr/bin/env bash
# Kept for users of the original template: starts the whole system (see `cargo xtask start --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo xtask start "$@"
