#!/usr/bin/env bash
# The benchmark: builds in release mode, brings the stores up, starts a server configured for
# benchmarking (its own databases, the no-reply limit out of the way, quiet logs), runs the
# chat-bench suite against it, and leaves the table, the JSON lines and the chart in results/.
# Not part of the test command. Arguments go to `chat-bench suite` (see `chat-bench suite --help`),
# for example: scripts/bench.sh --pairs 20 --idle-conns 2000 --idle-hold-secs 10
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/chat-target}
results=${CHAT_BENCH_RESULTS:-$repo/results}
port=${CHAT_BENCH_PORT:-18080}
mkdir -p "$results"

echo "== building (release)"
cargo build --release -p chat-server -p chat-bench
bin=$CARGO_TARGET_DIR/release

echo "== stores"
bash scripts/stores.sh

# as many open files as this machine allows (the idle scenario holds ~19,000 sockets)
ulimit -n "$(ulimit -Hn)" || true

echo "== server on 127.0.0.1:$port"
CHAT__SERVER__PORT=$port \
CHAT__MYSQL__URL=${CHAT_BENCH_MYSQL_URL:-mysql://root@127.0.0.1:3306/chat_bench} \
CHAT__REDIS__KEY_PREFIX=chat_bench \
CHAT__MONGO__DATABASE=chat_bench \
CHAT__CHAT__NO_REPLY_LIMIT=1000000000 \
CHAT__LOG__LEVEL=warning \
CHAT__LOG__DIR= \
    "$bin/chat-server" --config "$repo/config" 2>"$results/server.log" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    kill -0 $server 2>/dev/null || { cat "$results/server.log"; echo "the server did not start" >&2; exit 1; }
    sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || { cat "$results/server.log"; echo "the server is not ready" >&2; exit 1; }

stamp=$(date -u +%Y%m%dT%H%M%SZ)
echo "== chat-bench suite (results/$stamp.txt)"
"$bin/chat-bench" --port "$port" --server-pid "$server" --mongo-db chat_bench --results "$results" suite "$@" |
    tee "$results/$stamp.txt"
echo "== done: $results/$stamp.txt, $results/bench.jsonl, $results/latency.svg"
