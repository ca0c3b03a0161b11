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
# The suite's idle scenario runs on a second server of the same service that has served nothing
# (port CHAT_BENCH_PORT + 100), so that its memory per connection starts from a fresh baseline.
# CHAT_BENCH_WRITE_W / CHAT_BENCH_WRITE_J set the server's write concern (majority / true), which
# the store probes use too. The conditions of the run (commit, builds, cores, load, store
# versions and flags) are printed first and recorded in every JSON line.
#
# `peer-synapse` measures Matrix Synapse beside this server (scripts/synapse.sh installs and
# starts it): the same pairs, window and rates through the Matrix client-server API, e.g.
#   scripts/bench.sh peer-synapse --pairs 10 --secs 20
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
write_w=${CHAT_BENCH_WRITE_W:-majority}
write_j=${CHAT_BENCH_WRITE_J:-true}
mkdir -p "$results"

echo "== building (release)"
cargo build --release -p chat-server -p chat-bench
bin=$CARGO_TARGET_DIR/release
server_bin=$bin/chat-server
export CHAT_BENCH_SERVER_BUILD="release, mimalloc"
if [[ ${CHAT_BENCH_ALLOCATOR:-} == system ]]; then
    cargo build --release -p chat-server --no-default-features
    CHAT_BENCH_SERVER_BUILD="release, the system allocator"
fi
wrap=()
if [[ ${CHAT_BENCH_HEAPTRACK:-} == 1 ]]; then
    command -v heaptrack >/dev/null || { echo "heaptrack is missing: apt-get install heaptrack" >&2; exit 1; }
    cargo build --profile profiling -p chat-server --no-default-features
    server_bin=$CARGO_TARGET_DIR/profiling/chat-server
    wrap=(heaptrack -o "$results/heaptrack")
    CHAT_BENCH_SERVER_BUILD="profiling (release with line tables), the system allocator, under heaptrack"
    rm -f "$results"/heaptrack.*
fi

echo "== stores"
bash scripts/stores.sh

# what the run is measured against, for the record (conditions.rs)
mongo_port=$(sed -E 's#^mongodb://([^/@]*@)?[^:/]+:([0-9]+).*#\2#' <<<"$mongo_url")
[[ $mongo_port =~ ^[0-9]+$ ]] || mongo_port=27017
mongo_pid=$(ss -Hltnp "sport = :$mongo_port" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2 || true)
if [[ -n $mongo_pid && -r /proc/$mongo_pid/cmdline ]]; then
    export CHAT_BENCH_STORE_COMMAND=$(tr '\0' ' ' </proc/"$mongo_pid"/cmdline)
    # the store's own version (SecantusDB's buildInfo reports the MongoDB version it speaks)
    store_exe=$(readlink -f /proc/"$mongo_pid"/exe 2>/dev/null || true)
    [[ -n $store_exe ]] && export CHAT_BENCH_STORE_BINARY=$("$store_exe" --version 2>/dev/null | head -1 || true)
fi
export CHAT_BENCH_REDIS_VERSION=$(redis-cli -h 127.0.0.1 -p 6379 INFO server 2>/dev/null | tr -d '\r' |
    sed -n 's/^redis_version://p' || true)
export CHAT_BENCH_MYSQL_VERSION=$(mysql -h 127.0.0.1 -P 3306 -u root -N -e 'SELECT VERSION()' 2>/dev/null || true)

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
    CHAT__MONGO__WRITE_CONCERN__W=$write_w \
    CHAT__MONGO__WRITE_CONCERN__J=$write_j \
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

# wait_ready PORT NAME: until the server on PORT answers /readyz
wait_ready() {
    for _ in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$1/readyz" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    cat "$results/server-$2.log"
    echo "the server $2 is not ready" >&2
    exit 1
}

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
pairs | nodes | group | idle | offline | store | store-latency | login-flood | soak | suite | peer-synapse) ;;
*) set -- suite "$@" ;;
esac

# the suite's idle scenario: a server of its own, fresh when the scenario starts
if [[ $1 == suite && ${#wrap[@]} -eq 0 ]]; then
    idle_port=$((port + 100))
    start_server "$idle_port" bench-idle
    extra+=($!)
    trap 'kill -TERM $server ${extra[*]} 2>/dev/null; wait $runner ${extra[*]} 2>/dev/null || true' EXIT
    wait_ready "$idle_port" bench-idle
    set -- "$@" --idle-port "$idle_port" --idle-pid "${extra[-1]}"
fi

# Synapse beside this server: installed, configured and started by scripts/synapse.sh
if [[ $1 == peer-synapse ]]; then
    line=$(bash scripts/synapse.sh start | grep '^SYNAPSE ' | tail -1)
    read -r _ synapse_port synapse_pid synapse_version <<<"$line"
    [[ -n ${synapse_pid:-} ]] || { echo "Synapse did not start" >&2; exit 1; }
    trap 'kill -TERM $server ${extra[*]} 2>/dev/null; bash scripts/synapse.sh stop >&2 || true; wait $runner 2>/dev/null || true' EXIT
    shift
    set -- peer-synapse --synapse "http://127.0.0.1:$synapse_port" --synapse-pid "$synapse_pid" "$@"
fi
stamp=$(date -u +%Y%m%dT%H%M%SZ)
echo "== chat-bench $1 (results/$stamp.txt)"
"$bin/chat-bench" --port "$port" --server-pid "$server" --mongo-url "$mongo_url" --mongo-db chat_bench \
    --write-w "$write_w" --write-j "$write_j" --results "$results" "$@" |
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
