#!/usr/bin/env bash
# Run N chat-server processes on this machine as one service behind HAProxy, on the shared
# stores (scripts/stores.sh): node i is CHAT__CLUSTER__NODE_ID=node<i> on 127.0.0.1:<base+i>,
# HAProxy listens on 127.0.0.1:8080 (leastconn, health checks on GET /readyz, WebSockets
# tunnelled, a response header X-Chat-Node naming the node that answered).
#
# Usage:
#   scripts/cluster.sh [N]         foreground; Ctrl-C (or SIGTERM) stops everything cleanly
#   scripts/cluster.sh start [N]   detached: start, wait until ready, return
#   scripts/cluster.sh stop        stop a detached cluster cleanly
#   scripts/cluster.sh status      each node's readiness, as the node and as HAProxy see it
# N defaults to 3. Stopping sends SIGTERM to every node and waits for them to drain (about
# 10 s), and only then stops HAProxy; a node still running after CHAT_CLUSTER_STOP_WAIT is
# killed. Starting refuses when a port is taken or a cluster of ours is already running
# (`start` with the same N as the running one only reports it).
#
# Knobs (environment):
#   CHAT_STATE_DIR          state folder (default ~/.local/share/chat); the cluster's files are
#                           in <it>/cluster: haproxy.cfg, haproxy.log, pid files, and per node
#                           node<i>/ with its JSON log (chat.log) and stdout/stderr (stdout.log)
#   CHAT_CLUSTER_HOST       address HAProxy listens on (default 127.0.0.1)
#   CHAT_CLUSTER_PORT       port HAProxy listens on (default 8080)
#   CHAT_CLUSTER_NODE_PORT  base of the nodes' ports: node i listens on base+i (default 8080,
#                           so 8081..808N)
#   CHAT_CLUSTER_WAIT       seconds to wait for the nodes and HAProxy to be ready (default 90)
#   CHAT_CLUSTER_STOP_WAIT  seconds to wait for the nodes to drain before SIGKILL (default 40)
#   HAPROXY                 the haproxy binary (default: haproxy on PATH, else /usr/sbin/haproxy;
#                           installed with apt-get when missing)
#   CARGO_TARGET_DIR        build folder (default ~/.cache/chat-target, shared with the others)
# Other CHAT__SECTION__KEY variables reach every node (e.g. CHAT__LOG__LEVEL=debug).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/chat-target}
STATE_DIR=${CHAT_STATE_DIR:-$HOME/.local/share/chat}
CLUSTER_DIR=$STATE_DIR/cluster
LB_HOST=${CHAT_CLUSTER_HOST:-127.0.0.1}
LB_PORT=${CHAT_CLUSTER_PORT:-8080}
NODE_BASE=${CHAT_CLUSTER_NODE_PORT:-8080}
WAIT=${CHAT_CLUSTER_WAIT:-90}
STOP_WAIT=${CHAT_CLUSTER_STOP_WAIT:-40}
SERVER_BIN=$CARGO_TARGET_DIR/release/chat-server
TEMPLATE=$repo/config/haproxy-cluster.cfg.in
HAPROXY_CFG=$CLUSTER_DIR/haproxy.cfg
HAPROXY_PID=$CLUSTER_DIR/haproxy.pid
HAPROXY_SOCK=$CLUSTER_DIR/haproxy.sock
HAPROXY_LOG=$CLUSTER_DIR/haproxy.log
COUNT_FILE=$CLUSTER_DIR/nodes     # the running cluster's node count
ADDR_FILE=$CLUSTER_DIR/addresses  # and its addresses: LB host, LB port, node port base

log() { printf '[cluster] %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

usage() {
    sed -n '7,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# --- small helpers ----------------------------------------------------------------

is_count() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }
is_port() { [[ $1 =~ ^[0-9]+$ ]] && ((10#$1 >= 1 && 10#$1 <= 65535)); }

node_port() { printf '%s\n' $((NODE_BASE + $1)); }
node_dir() { printf '%s\n' "$CLUSTER_DIR/node$1"; }
node_pidfile() { printf '%s\n' "$CLUSTER_DIR/node$1/pid"; }

# The address to reach HAProxy on (a wildcard bind is reached on loopback).
lb_addr() {
    if [[ $LB_HOST == 0.0.0.0 ]]; then printf '127.0.0.1\n'; else printf '%s\n' "$LB_HOST"; fi
}

# True when something accepts TCP connections on 127.0.0.1:$1 (as scripts/stores.sh).
# shellcheck disable=SC2016 # $1 is expanded by the inner bash
port_open() {
    timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# Who listens on a port, for the error message.
port_owner() {
    local pid=""
    if command -v ss >/dev/null; then
        pid=$(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2) || pid=""
    fi
    if [[ -n $pid && -r /proc/$pid/cmdline ]]; then
        printf '%s (pid %s)' "$(tr '\0' ' ' <"/proc/$pid/cmdline" | tr -s ' ' | sed 's/ $//' | cut -c1-80)" "$pid"
    else
        printf 'another process'
    fi
}

# pid_alive PIDFILE NAME: the pid in PIDFILE is running a program whose command line has NAME.
pid_alive() {
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] && grep -qa -- "$2" "/proc/$pid/cmdline" 2>/dev/null
}

node_alive() { pid_alive "$(node_pidfile "$1")" chat-server; }
haproxy_alive() { pid_alive "$HAPROXY_PID" haproxy; }

# HTTP status of GET URL ("000" when nothing answers).
http_status() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$1" 2>/dev/null || true
}

node_ready() { [[ $(http_status "http://127.0.0.1:$(node_port "$1")/readyz") == 200 ]]; }

# The node count of the cluster recorded in the state dir (0 when none).
recorded_count() {
    local n
    n=$(cat "$COUNT_FILE" 2>/dev/null) || n=0
    if is_count "$n"; then printf '%s\n' "$n"; else printf '0\n'; fi
}

# A running cluster's addresses win over the environment's (status and stop find it).
load_recorded_addresses() {
    local host port base
    read -r host port base <"$ADDR_FILE" 2>/dev/null || return 0
    if [[ -n $host ]] && is_port "$port" && [[ $base =~ ^[0-9]+$ ]]; then
        LB_HOST=$host LB_PORT=$port NODE_BASE=$base
    fi
}

# True when any process of a recorded cluster is still running.
anything_alive() {
    local n i
    n=$(recorded_count)
    if haproxy_alive; then return 0; fi
    for ((i = 1; i <= n; i++)); do
        if node_alive "$i"; then return 0; fi
    done
    return 1
}

# launch PIDFILE LOGFILE DIR CMD...: start CMD in DIR in its own session (so a Ctrl-C at the
# terminal reaches only this script, which then stops things in order, and a detached cluster
# outlives it), output appended to LOGFILE, its pid in PIDFILE.
launch() {
    local pidfile=$1 logfile=$2 dir=$3
    shift 3
    (
        cd "$dir"
        # shellcheck disable=SC2016 # $$, $1 and $@ belong to the inner bash
        setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$pidfile" "$@" \
            >>"$logfile" 2>&1 </dev/null &
    )
    local i
    for ((i = 0; i < 50; i++)); do
        [[ -s $pidfile ]] && return 0
        sleep 0.1
    done
    die "could not start $1"
}

# --- HAProxy ------------------------------------------------------------------------

haproxy_bin() {
    local bin=${HAPROXY:-}
    if [[ -z $bin ]]; then
        bin=$(command -v haproxy 2>/dev/null) || bin=/usr/sbin/haproxy
    fi
    printf '%s\n' "$bin"
}

# Install Debian's haproxy when there is none (as scripts/stores.sh installs its packages).
ensure_haproxy() {
    HAPROXY_BIN=$(haproxy_bin)
    [[ -x $HAPROXY_BIN ]] && return
    [[ -z ${HAPROXY:-} ]] || die "HAPROXY=$HAPROXY is not an executable"
    command -v apt-get >/dev/null || die "no haproxy and no apt-get to install it; install haproxy by hand"
    local sudo=()
    [[ $(id -u) == 0 ]] || sudo=(sudo)
    log "apt-get update"
    "${sudo[@]}" apt-get update -qq >&2 || die "apt-get update failed"
    log "apt-get install -y haproxy"
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq haproxy >/dev/null ||
        die "apt-get install haproxy failed"
    HAPROXY_BIN=$(haproxy_bin)
    [[ -x $HAPROXY_BIN ]] || die "haproxy installed, but no $HAPROXY_BIN"
    # The package starts a system-wide haproxy (on :80, /etc/haproxy); ours is separate.
}

# write_haproxy_cfg N: the template with this cluster's listen address and N servers.
write_haproxy_cfg() {
    local n=$1 i servers="" bind=$LB_HOST:$LB_PORT
    [[ -r $TEMPLATE ]] || die "no HAProxy template $TEMPLATE"
    for ((i = 1; i <= n; i++)); do
        servers+="    server node$i 127.0.0.1:$(node_port "$i") check"$'\n'
    done
    local line
    {
        while IFS= read -r line || [[ -n $line ]]; do
            if [[ $line == "@SERVERS@" ]]; then
                printf '%s' "$servers"
                continue
            fi
            line=${line//@STATE@/$CLUSTER_DIR}
            line=${line//@BIND@/$bind}
            printf '%s\n' "$line"
        done <"$TEMPLATE"
    } >"$HAPROXY_CFG.tmp"
    mv "$HAPROXY_CFG.tmp" "$HAPROXY_CFG"
    "$HAPROXY_BIN" -c -q -f "$HAPROXY_CFG" >&2 || die "haproxy -c -f $HAPROXY_CFG failed"
}

# One line per server of HAProxy's view: "<name> <status>" (e.g. "node1 UP"), from its socket.
haproxy_servers() {
    [[ -S $HAPROXY_SOCK ]] || return 1
    local out
    if command -v socat >/dev/null; then
        out=$(printf 'show stat\n' | timeout 3 socat - "UNIX-CONNECT:$HAPROXY_SOCK" 2>/dev/null) || return 1
    elif command -v python3 >/dev/null; then
        out=$(timeout 3 python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"show stat\n")
data = b""
while chunk := s.recv(65536): data += chunk
sys.stdout.write(data.decode())' "$HAPROXY_SOCK" 2>/dev/null) || return 1
    else
        return 1
    fi
    # CSV: pxname,svname,...; status is field 18
    awk -F, '$1 == "chat_nodes" && $2 != "BACKEND" { print $2, $18 }' <<<"$out"
}

# True when HAProxy sees all N servers UP and answers a request.
lb_ready() {
    local n=$1 up
    up=$(haproxy_servers 2>/dev/null | awk '$2 == "UP" && NF == 2' | wc -l) || up=0 # not "UP 1/2"
    ((up == n)) && [[ $(http_status "http://$(lb_addr):$LB_PORT/readyz") == 200 ]]
}

# --- building, starting, stopping ------------------------------------------------------

build() {
    log "cargo build --release -p chat-server (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    cargo build --release -p chat-server >&2 || die "cargo build failed"
    [[ -x $SERVER_BIN ]] || die "no $SERVER_BIN after the build"
}

# Refuse to start over a running cluster or on taken ports.
check_free() {
    local n=$1 i port taken=0
    if anything_alive; then
        log "a cluster of ours is running (state in $CLUSTER_DIR):"
        show_status >&2 || true
        die "stop it first: scripts/cluster.sh stop"
    fi
    is_port "$LB_PORT" || die "CHAT_CLUSTER_PORT=$LB_PORT is not a port"
    for ((i = 0; i <= n; i++)); do
        if ((i == 0)); then port=$LB_PORT; else port=$(node_port "$i"); fi
        is_port "$port" || die "node $i's port $port is not a port (CHAT_CLUSTER_NODE_PORT=$NODE_BASE)"
        if ((i > 0 && port == LB_PORT)); then
            die "node $i's port $port is the load balancer's (CHAT_CLUSTER_PORT / CHAT_CLUSTER_NODE_PORT)"
        fi
        if port_open "$port"; then
            log "port $port is taken by $(port_owner "$port")"
            taken=1
        fi
    done
    ((taken == 0)) || die "ports taken (HAProxy :$LB_PORT, nodes :$(node_port 1)..:$(node_port "$n")); free them or set CHAT_CLUSTER_PORT / CHAT_CLUSTER_NODE_PORT"
}

start_node() {
    local i=$1 dir
    dir=$(node_dir "$i")
    mkdir -p "$dir"
    rm -f "$(node_pidfile "$i")"
    printf '\n--- %s: starting node%s on :%s\n' "$(date -Is)" "$i" "$(node_port "$i")" >>"$dir/stdout.log"
    CHAT__CLUSTER__NODE_ID=node$i \
        CHAT__SERVER__HOST=127.0.0.1 \
        CHAT__SERVER__PORT=$(node_port "$i") \
        CHAT__SERVER__TRUST_FORWARDED_FOR=true \
        CHAT__LOG__DIR=$dir \
        launch "$(node_pidfile "$i")" "$dir/stdout.log" "$dir" "$SERVER_BIN" --config "$repo/config"
    log "node$i: pid $(cat "$(node_pidfile "$i")"), :$(node_port "$i"), logs in $dir"
}

start_haproxy() {
    rm -f "$HAPROXY_PID"
    printf '\n--- %s: starting haproxy on %s:%s\n' "$(date -Is)" "$LB_HOST" "$LB_PORT" >>"$HAPROXY_LOG"
    # in the foreground of its own session (no daemon mode: we supervise it)
    launch "$HAPROXY_PID" "$HAPROXY_LOG" "$CLUSTER_DIR" "$HAPROXY_BIN" -f "$HAPROXY_CFG"
    log "haproxy: pid $(cat "$HAPROXY_PID"), $LB_HOST:$LB_PORT, config $HAPROXY_CFG, log $HAPROXY_LOG"
}

# Start everything and wait until it is ready; on failure stop what was started.
start_cluster() {
    local n=$1 i t
    command -v curl >/dev/null || die "curl is needed (apt-get install curl)"
    ensure_haproxy
    check_free "$n"
    mkdir -p "$CLUSTER_DIR"
    write_haproxy_cfg "$n"
    bash scripts/stores.sh
    build
    check_free "$n" # the build took a while

    printf '%s\n' "$n" >"$COUNT_FILE"
    printf '%s %s %s\n' "$LB_HOST" "$LB_PORT" "$NODE_BASE" >"$ADDR_FILE"
    for ((i = 1; i <= n; i++)); do start_node "$i"; done

    log "waiting for every node's /readyz (up to ${WAIT}s)"
    for ((t = 0; ; t++)); do
        local ready=0
        for ((i = 1; i <= n; i++)); do
            if ! node_alive "$i"; then
                fail_start "node$i exited; last lines of $(node_dir "$i")/stdout.log:" "$(node_dir "$i")/stdout.log"
            fi
            if node_ready "$i"; then ready=$((ready + 1)); fi
        done
        if ((ready == n)); then break; fi
        if ((t >= WAIT)); then fail_start "only $ready of $n nodes ready after ${WAIT}s" ""; fi
        sleep 1
    done

    start_haproxy
    for ((t = 0; ; t++)); do
        if ! haproxy_alive; then fail_start "haproxy exited; last lines of $HAPROXY_LOG:" "$HAPROXY_LOG"; fi
        if lb_ready "$n"; then break; fi
        if ((t >= WAIT)); then fail_start "HAProxy not ready on $(lb_addr):$LB_PORT after ${WAIT}s" "$HAPROXY_LOG"; fi
        sleep 1
    done
}

# fail_start MESSAGE LOGFILE: say why, show the log's tail, stop what runs, exit.
fail_start() {
    log "ERROR: $1"
    if [[ -n $2 && -r $2 ]]; then tail -n 15 "$2" >&2; fi
    stop_cluster
    exit 1
}

# Stop a recorded cluster: SIGTERM to every node, wait for them to drain, then HAProxy.
stop_cluster() {
    local n i t pid left
    n=$(recorded_count)
    for ((i = 1; i <= n; i++)); do
        if node_alive "$i"; then
            pid=$(cat "$(node_pidfile "$i")")
            log "node$i: SIGTERM to pid $pid"
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    for ((t = 0; t < STOP_WAIT * 10; t++)); do
        left=0
        for ((i = 1; i <= n; i++)); do
            if node_alive "$i"; then left=$((left + 1)); fi
        done
        if ((left == 0)); then break; fi
        sleep 0.1
    done
    for ((i = 1; i <= n; i++)); do
        if node_alive "$i"; then
            pid=$(cat "$(node_pidfile "$i")")
            log "node$i: still running after ${STOP_WAIT}s; SIGKILL to pid $pid"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$(node_pidfile "$i")"
    done
    if ((n > 0)); then log "nodes stopped"; fi
    if haproxy_alive; then
        pid=$(cat "$HAPROXY_PID")
        log "haproxy: SIGTERM to pid $pid"
        kill -TERM "$pid" 2>/dev/null || true
        for ((t = 0; t < 100; t++)); do
            if ! haproxy_alive; then break; fi
            sleep 0.1
        done
        if haproxy_alive; then kill -KILL "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$HAPROXY_PID" "$HAPROXY_SOCK" "$COUNT_FILE" "$ADDR_FILE"
}

show_status() {
    local n i state name st
    n=$(recorded_count)
    if ((n == 0)) && ! haproxy_alive; then
        printf 'no cluster running (state in %s)\n' "$CLUSTER_DIR"
        return 3
    fi
    declare -A seen=()
    if haproxy_alive; then
        while read -r name st; do seen[$name]=$st; done < <(haproxy_servers || true)
        printf 'haproxy   pid %-8s %s:%s  /readyz via it: %s\n' "$(cat "$HAPROXY_PID")" "$LB_HOST" "$LB_PORT" \
            "$(http_status "http://$(lb_addr):$LB_PORT/readyz")"
    else
        printf 'haproxy   not running\n'
    fi
    local all=0
    for ((i = 1; i <= n; i++)); do
        if node_alive "$i"; then
            state="pid $(cat "$(node_pidfile "$i")")"
        else
            state="not running"
            all=1
        fi
        local code
        code=$(http_status "http://127.0.0.1:$(node_port "$i")/readyz")
        [[ $code == 200 ]] || all=1
        printf 'node%-5s %-16s :%-5s /readyz: %s  haproxy: %s\n' "$i" "$state" "$(node_port "$i")" \
            "$code" "${seen[node$i]:-?}"
    done
    if ! haproxy_alive; then all=1; fi
    return "$all"
}

print_ready() {
    local n=$1 mode=$2
    log "ready: $n nodes behind http://$(lb_addr):$LB_PORT/ (HAProxy; nodes on :$(node_port 1)..:$(node_port "$n"))"
    log "  web client http://$(lb_addr):$LB_PORT/   WebSocket ws://$(lb_addr):$LB_PORT/ws?token=...   responses name the node in X-Chat-Node"
    log "  logs: $CLUSTER_DIR/node<i>/{chat.log,stdout.log}, $HAPROXY_LOG"
    if [[ $mode == fg ]]; then
        log "  stop: Ctrl-C (or kill -TERM $$)"
    else
        log "  status: scripts/cluster.sh status    stop: scripts/cluster.sh stop"
    fi
}

# --- main ---------------------------------------------------------------------------

main() {
    local cmd=${1:-}
    if anything_alive; then load_recorded_addresses; fi
    case $cmd in
        start)
            local n=${2:-3}
            is_count "$n" || usage
            if anything_alive && [[ $(recorded_count) == "$n" ]] && haproxy_alive && show_status >/dev/null; then
                log "already running with $n nodes:"
                show_status >&2 || true
                return 0
            fi
            start_cluster "$n"
            print_ready "$n" detached
            ;;
        stop)
            if ! anything_alive; then
                log "no cluster running (state in $CLUSTER_DIR)"
                rm -f "$COUNT_FILE" "$ADDR_FILE" "$HAPROXY_PID" "$HAPROXY_SOCK"
                return 0
            fi
            stop_cluster
            log "stopped"
            ;;
        status)
            show_status
            ;;
        -h | --help | help) usage ;;
        *)
            local n=${1:-3}
            is_count "$n" || usage
            [[ $# -le 1 ]] || usage
            trap 'log "interrupted during start-up; stopping"; stop_cluster; exit 130' INT TERM
            start_cluster "$n"
            print_ready "$n" fg
            local stopping=0
            trap 'stopping=1' INT TERM
            local i dead=()
            while ((stopping == 0)); do
                sleep 1 &
                wait $! || true
                for ((i = 1; i <= n; i++)); do
                    if [[ -z ${dead[i]:-} ]] && ! node_alive "$i"; then
                        dead[i]=1
                        log "node$i exited (see $(node_dir "$i")/stdout.log); the others go on"
                    fi
                done
                if [[ -z ${dead[0]:-} ]] && ! haproxy_alive; then
                    dead[0]=1
                    log "haproxy exited (see $HAPROXY_LOG); the nodes still answer on their own ports"
                fi
            done
            trap '' INT TERM
            log "stopping"
            stop_cluster
            log "stopped"
            ;;
    esac
}

main "$@"
