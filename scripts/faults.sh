#!/usr/bin/env bash
# The fault drill: the chat server on a Redis, a SecantusDB and a proxy to MySQL of its own,
# pairs chatting with clients that reconnect, log in again and resend; in turn Redis killed
# (restarted empty), MongoDB frozen 6 s, MongoDB killed and restarted, MySQL cut 6 s, the server
# stopped with SIGTERM and killed with SIGKILL (restarted each time). It prints, per fault and
# in total, what was acknowledged and refused, and every count that must be zero; it exits
# non-zero when one is not.
#
#   scripts/faults.sh            the short form (about 100 s, debug build; part of scripts/test.sh)
#   scripts/faults.sh --full     the full form (release build, longer recoveries, more pairs)
# Further arguments go to chat-drill (chat-drill --help), e.g. --pairs 16 --rate 50.
# CHAT_DRILL_MYSQL (host:port, default 127.0.0.1:3306) is the MariaDB the proxy stands before.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/chat-target}
export PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin"

form=short
case ${1:-} in
--full) form=full; shift ;;
--short) shift ;;
esac

# the drill starts its own Redis and SecantusDB from these binaries; MySQL is the machine's
bash scripts/stores.sh
command -v redis-server >/dev/null || { echo "faults.sh: redis-server is missing" >&2; exit 1; }
command -v secantusd-rs >/dev/null || { echo "faults.sh: secantusd-rs is missing (scripts/stores.sh builds it)" >&2; exit 1; }

if [[ $form == full ]]; then
    cargo build --release -p chat-server -p chat-drill
    bin=$CARGO_TARGET_DIR/release
    set -- --pairs 16 --rate 20 --warmup-secs 15 --recover-secs 30 "$@"
else
    cargo build -p chat-server -p chat-drill
    bin=$CARGO_TARGET_DIR/debug
    set -- --pairs 8 --rate 20 --warmup-secs 4 --recover-secs 8 "$@"
fi
exec "$bin/chat-drill" --server-bin "$bin/chat-server" --config "$repo/config" \
    --mysql "${CHAT_DRILL_MYSQL:-127.0.0.1:3306}" "$@"
