#!/usr/bin/env bash
# The benchmark: builds in release mode, brings the stores up, starts a server configured for
# benchmarking (its own databases, the no-reply limit out of the way, quiet logs), runs the
# chat-bench suite against it, and leaves the table, the JSON lines and the chart in results/.
# The abuse limits are lifted (one address logs in thousands of users; senders go as fast as
# they are acknowledged), except in `login-flood`, which is about them (the address limit stays
# lifted: the flood comes from one address). Not part of the test command. Arguments go to
# `chat-bench suite` (see `chat-bench suite --help`),
# for example: scripts/bench.sh --pairs 20 --idle-conns 2000 --idle-hold-secs 10
# or: scripts/bench.sh group --members 1000 --online 100
# or, starting with a scenario's name, to that scenario: scripts/bench.sh idle --conns 5000
#
# CHAT_BENCH_HEAPTRACK=1 runs the server under heaptrack (Debian package `heaptrack`) with the
# system allocator (mimalloc is invisible to it), built in the `profiling` profile, and prints
# the allocation sites that held most at the heap's peak, e.g. what idle connections hold:
#   CHAT_BENCH_HEAPTRACK=1 scripts/bench.sh idle --conns 4000 --hold-secs 10
# CHAT_BENCH_ALLOCATOR=system runs the release server with the system allocator instead of
# mimalloc (to compare the two, e.g. in the soak).
#
# `nodes` starts CHAT_BENCH_NODES (3) servers as nodes of one service (ports 18080, 18081, …)
# and runs the same pairs on one node, then with each pair's two sides on two nodes:
#   scripts/bench.sh nodes --pairs 50 --secs 15
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/chat-target}
results=${CHAT_BENCH_RESULTS:-$repo/results}
port=${CHAT_BENCH_PORT:-18080}
# CHAT_BENCH_MONGO_URL: another MongoDB for the server and the benchmark (for example a
# SecantusDB started without --sync-on-commit, to measure what durable writes cost)
mongo_url=${CHAT_BENCH_MONGO_URL:-mongodb://127.0.0.1:27017}
mkdir -p "$results"

echo "== building (release)"
cargo build --release -p chat-server -p chat-bench
bin=$CARGO_TARGET_DIR/release
server_bin=$bin/chat-server
if [[ ${CHAT_BENCH_ALLOCATOR:-} == system ]]; then
    cargo build --release -p chat-server --no-default-features
fi
wrap=()
if [[ ${CHAT_BENCH_HEAPTRACK:-} == 1 ]]; then
    command -v heaptrack >/dev/null || { echo "heaptrack is missing: apt-get install heaptrack" >&2; exit 1; }
    cargo build --profile profiling -p chat-server --no-default-features
    server_bin=$CARGO_TARGET_DIR/profiling/chat-server
    wrap=(heaptrack -o "$results/heaptrack")
    rm -f "$results"/heaptrack.*
fi

echo "== stores"
bash scripts/stores.sh

# as many open files as this machine allows (the idle scenario holds ~19,000 sockets)
ulimit -n "$(ulimit -Hn)" || true

# start_server PORT NODE: a server configured for benchmarking, in the background
start_server() {
    CHAT__SERVER__PORT=$1 \
    CHAT__CLUSTER__NODE_ID=$2 \
    CHAT__MYSQL__URL=${CHAT_BENCH_MYSQL_URL:-mysql://root@127.0.0.1:3306/chat_bench} \
    CHAT__REDIS__KEY_PREFIX=chat_bench \
    CHAT__MONGO__DATABASE=chat_bench \
    CHAT__CHAT__NO_REPLY_LIMIT=1000000000 \
    CHAT__LIMITS__IP_ATTEMPTS=1000000000 \
    CHAT__LIMITS__SENDS_PER_SEC=0 \
    CHAT__LIMITS__READS_PER_SEC=0 \
    CHAT__LIMITS__CONNECTIONS_PER_USER=1000000 \
    CHAT__MONGO__URL=$mongo_url \
    CHAT__LOG__LEVEL=warning \
    CHAT__LOG__DIR='' \
        ${wrap[@]+"${wrap[@]}"} "$server_bin" --config "$repo/config" 2>"$results/server-$2.log" &
}

echo "== server on 127.0.0.1:$port"
start_server "$port" bench1
server=$!
runner=$server
trap 'kill -TERM $server 2>/dev/null; wait $runner 2>/dev/null || true' EXIT
if ((${#wrap[@]})); then
    # the wrapper starts the server as its child: signals and figures go to the server itself
    server=
    for _ in $(seq 1 100); do
        server=$(pgrep -n -P "$runner" -f "^$server_bin") && break
        sleep 0.1
    done
    [[ -n $server ]] || { kill -TERM $runner; echo "heaptrack did not start the server" >&2; exit 1; }
fi
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    kill -0 $runner 2>/dev/null || { cat "$results/server-bench1.log"; echo "the server did not start" >&2; exit 1; }
    sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || { cat "$results/server-bench1.log"; echo "the server is not ready" >&2; exit 1; }

# the nodes scenario: more nodes of the same service beside the first
extra=()
if [[ ${1:-} == nodes ]]; then
    nodes=${CHAT_BENCH_NODES:-3}
    ports=$port pids=$server
    for ((i = 2; i <= nodes; i++)); do
        start_server $((port + i - 1)) "bench$i"
        extra+=($!)
        ports+=",$((port + i - 1))" pids+=",$!"
    done
    trap 'kill -TERM $server ${extra[*]} 2>/dev/null; wait $runner ${extra[*]} 2>/dev/null || true' EXIT
    for ((i = 2; i <= nodes; i++)); do
        for _ in $(seq 1 100); do
            curl -fsS "http://127.0.0.1:$((port + i - 1))/readyz" >/dev/null 2>&1 && break
            sleep 0.2
        done
    done
    redis_pid=$(pgrep -o -x redis-server || true)
    shift
    set -- nodes --nodes "$ports" --node-pids "$pids" ${redis_pid:+--redis-pid "$redis_pid"} "$@"
fi

case ${1:-} in
pairs | nodes | group | idle | offline | store | store-latency | login-flood | soak | suite) ;;
*) set -- suite "$@" ;;
esac
stamp=$(date -u +%Y%m%dT%H%M%SZ)
echo "== chat-bench $1 (results/$stamp.txt)"
"$bin/chat-bench" --port "$port" --server-pid "$server" --mongo-url "$mongo_url" --mongo-db chat_bench \
    --results "$results" "$@" |
    tee "$results/$stamp.txt"
if ((${#wrap[@]})); then
    # heaptrack finishes its file when the server exits
    kill -TERM $server
    wait $runner || true
    trap - EXIT
    # .zst where heaptrack has zstd, .gz otherwise
    for data in "$results"/heaptrack.zst "$results"/heaptrack.gz; do
        [[ -f $data ]] && break
    done
    heaptrack_print --print-peaks 1 --print-allocators 0 --print-temporary 0 --print-leaks 0 \
        "$data" >"$results/heaptrack.txt"
    echo "== heap at its peak, by allocation site: $results/heaptrack.txt"
fi
echo "== done: $results/$stamp.txt, $results/bench.jsonl, $results/latency.svg"
