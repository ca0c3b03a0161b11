#!/usr/bin/env bash
# Start the stores, then the chat server (release build) with config/.
# Extra arguments go to the server: scripts/run.sh --help
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

# One shared target dir, so fresh clones (CI) reuse earlier builds.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/chat-target}

bash scripts/stores.sh
exec cargo run --release -p chat-server -- --config "$repo/config" "$@"
