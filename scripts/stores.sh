#!/usr/bin/env bash
# Bring the three stores up on 127.0.0.1 and return once all of them answer:
#   MySQL (MariaDB) :3306   Redis :6379   MongoDB (SecantusDB or mongo) :27017
#
# Usage: bash scripts/stores.sh      (or: source scripts/stores.sh)
# Idempotent: a store whose port already answers is left alone.
#
# Knobs (environment):
#   CHAT_STATE_DIR          where the MongoDB stand-in keeps data, log and pid
#                           (default ~/.local/share/chat)
#   CHAT_STORES_WAIT        seconds to wait for each store to answer (default 60)
#   CHAT_SECANTUS_BUILD_WAIT seconds to wait for a `cargo install secantus-mdb`
#                           that is already running (default 1200)
#
# SecantusDB is started with --sync-on-commit: without it, a kill -9 loses writes it had
# acknowledged even under write concern j:true (measured); with it, none. A SecantusDB of
# ours found running without the flag is restarted with it.

SECANTUS_VERSION=0.5.3-beta.196

log() { printf '[stores] %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

# --- probes ----------------------------------------------------------------

# True when something accepts TCP connections on 127.0.0.1:$1.
# shellcheck disable=SC2016 # $1 is expanded by the inner bash
port_open() {
    timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

mysql_admin() {
    local bin
    for bin in mariadb-admin mysqladmin; do
        if command -v "$bin" >/dev/null; then
            "$bin" --protocol=tcp -h127.0.0.1 -P3306 -uroot --connect-timeout=3 "$@"
            return
        fi
    done
    return 127
}

mysql_client() {
    local bin
    for bin in mariadb mysql; do
        if command -v "$bin" >/dev/null; then
            "$bin" "$@"
            return
        fi
    done
    return 127
}

# MariaDB is ready when `mysqladmin ping` says so (the port alone may belong to
# a proxy or a server still starting). Without a client, the port must do.
mysql_ready() {
    local rc=0
    mysql_admin ping >/dev/null 2>&1 || rc=$?
    if [[ $rc == 127 ]]; then port_open 3306; else return "$rc"; fi
}

# Redis is ready when it answers PING with PONG (spoken directly, no client needed).
# shellcheck disable=SC2016 # $reply belongs to the inner bash
redis_ready() {
    timeout 3 bash -c '
        exec 3<>/dev/tcp/127.0.0.1/6379 || exit 1
        printf "PING\r\n" >&3
        read -r reply <&3
        [[ $reply == +PONG* ]]' 2>/dev/null
}

mongo_ready() { port_open 27017; }

# wait_for PROBE [SECONDS]: poll PROBE once a second until it succeeds.
wait_for() {
    local probe=$1 limit=${2:-$WAIT} i
    for ((i = 0; i < limit; i++)); do
        "$probe" && return 0
        sleep 1
    done
    "$probe"
}

# --- installing --------------------------------------------------------------

APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null || die "cannot install $* (no apt-get); install it by hand"
    local sudo=()
    [[ $(id -u) == 0 ]] || sudo=(sudo)
    if [[ $APT_UPDATED == 0 ]]; then
        log "apt-get update"
        "${sudo[@]}" apt-get update -qq >&2 || die "apt-get update failed"
        APT_UPDATED=1
    fi
    log "apt-get install -y $*"
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@" >/dev/null ||
        die "apt-get install $* failed"
}

# --- MySQL (MariaDB) ------------------------------------------------------------

start_mysql() {
    local fresh=0
    if [[ ! -x /usr/sbin/mariadbd ]]; then
        apt_install mariadb-server mariadb-client
        fresh=1
        # The package may have started the server itself.
        if wait_for mysql_ready 5; then
            MYSQL_USED="MariaDB (installed from Debian, started by its package)"
            allow_empty_root_over_tcp
            return
        fi
    fi

    # First start on an empty datadir needs the system tables.
    mkdir -p /run/mysqld
    chown mysql:mysql /run/mysqld 2>/dev/null || true
    if [[ ! -d /var/lib/mysql/mysql ]]; then
        log "initialising the MariaDB datadir /var/lib/mysql"
        local installer
        installer=$(command -v mariadb-install-db || command -v mysql_install_db) ||
            die "no mariadb-install-db to initialise /var/lib/mysql"
        "$installer" --user=mysql --datadir=/var/lib/mysql >/dev/null || die "$installer failed"
        fresh=1
    fi

    log "starting mariadbd"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    wait_for mysql_ready ||
        die "MariaDB did not answer on 127.0.0.1:3306 within ${WAIT}s (see /var/log/mysql/error.log)"
    MYSQL_USED="MariaDB (/usr/sbin/mariadbd, started here)"
    if [[ $fresh == 1 ]]; then allow_empty_root_over_tcp; fi
}

# Debian's fresh install lets root in only through the unix socket; the app and
# the tests use mysql://root@127.0.0.1:3306 with an empty password. Only done for
# a server this script installed or initialised.
allow_empty_root_over_tcp() {
    mysql_client --protocol=tcp -h127.0.0.1 -P3306 -uroot -e 'SELECT 1' >/dev/null 2>&1 && return
    log "allowing root with an empty password over TCP (fresh install)"
    mysql_client -uroot -e "
        ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket;
        CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
        GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
        FLUSH PRIVILEGES;" ||
        log "WARNING: could not open root@127.0.0.1 with an empty password; set it up by hand"
}

# --- Redis -----------------------------------------------------------------------

start_redis() {
    if ! command -v redis-server >/dev/null; then
        apt_install redis-server
        if wait_for redis_ready 5; then
            REDIS_USED="redis-server (installed from Debian, started by its package)"
            return
        fi
    fi
    mkdir -p /var/lib/redis /var/log/redis
    log "starting redis-server"
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log >/dev/null
    wait_for redis_ready ||
        die "Redis did not answer PING on 127.0.0.1:6379 within ${WAIT}s (see /var/log/redis/ci.log)"
    REDIS_USED="redis-server $(redis-server --version | grep -o 'v=[^ ]*') (started here)"
}

# --- MongoDB (SecantusDB) ----------------------------------------------------------

secantus_rs() {
    local bin
    bin=$(command -v secantusd-rs 2>/dev/null) || bin="${CARGO_HOME:-$HOME/.cargo}/bin/secantusd-rs"
    [[ -x $bin ]] && "$bin" --help >/dev/null 2>&1 && printf '%s\n' "$bin"
}

# A `cargo install secantus-mdb` started by someone else (or an earlier run).
secantus_build_running() {
    pgrep -f '^[^ ]*cargo install.* secantus-mdb' >/dev/null
}

# Find (or build) the Rust server. Prints its path; fails when there is none.
ensure_secantus_rs() {
    if ! secantus_rs >/dev/null && secantus_build_running; then
        log "a 'cargo install secantus-mdb' is running; waiting for it (up to ${BUILD_WAIT}s)"
        local i
        for ((i = 0; i < BUILD_WAIT; i += 5)); do
            secantus_build_running || break
            sleep 5
        done
    fi
    if ! secantus_rs >/dev/null && ! secantus_build_running; then
        command -v cargo >/dev/null || {
            log "no cargo; cannot build secantusd-rs"
            return 1
        }
        command -v cmake >/dev/null || apt_install cmake
        log "building secantusd-rs (cargo install secantus-mdb, ~8 minutes; log: $STATE_DIR/secantus-install.log)"
        # Own target dir: do not mix the server's build into the workspace's.
        env -u CARGO_TARGET_DIR cargo install secantus-mdb --version "=$SECANTUS_VERSION" \
            --ignore-rust-version >"$STATE_DIR/secantus-install.log" 2>&1 ||
            log "cargo install secantus-mdb failed (see $STATE_DIR/secantus-install.log)"
    fi
    secantus_rs
}

# The Python server from the venv (created on first use). Prints its path.
ensure_secantus_py() {
    local venv=$HOME/.local/secantus-venv
    if [[ ! -x $venv/bin/secantusd-py ]]; then
        log "installing the Python SecantusDB server into $venv"
        # Debian splits venv support (ensurepip) into python3-venv.
        python3 -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
        { python3 -m venv "$venv" && "$venv/bin/pip" install -q secantusdb; } >&2 || return 1
    fi
    printf '%s\n' "$venv/bin/secantusd-py"
}

# True while the server recorded in our pid file is alive.
secantus_pid_alive() {
    local pid
    pid=$(cat "$PID_FILE" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] && grep -qa secantusd "/proc/$pid/cmdline" 2>/dev/null
}

# The flag that makes SecantusDB fsync its log at every commit (honouring j:true), for the
# server that takes it (secantusd-rs); the Python server has no such flag.
secantus_durability_flag() {
    if "$1" --help 2>&1 | grep -q -- '--sync-on-commit'; then printf '%s\n' --sync-on-commit; fi
}

# True when our running SecantusDB was started without the durability flag its binary has.
secantus_pid_not_durable() {
    local pid bin
    pid=$(cat "$PID_FILE" 2>/dev/null) || return 1
    bin=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n1) || return 1
    [[ -n $bin && -n $(secantus_durability_flag "$bin") ]] || return 1
    ! tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qx -- '--sync-on-commit'
}

# Stops our SecantusDB (SIGTERM: it shuts down cleanly) and waits until it is gone.
stop_our_secantus() {
    local pid i
    pid=$(cat "$PID_FILE")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 30; i++)); do
        secantus_pid_alive || break
        sleep 1
    done
    if secantus_pid_alive; then kill -KILL "$pid" 2>/dev/null || true; sleep 1; fi
    rm -f "$PID_FILE"
}

# launch_secantus BIN STORAGE_DIR: start in its own session so it outlives us.
launch_secantus() {
    local bin=$1 storage=$2
    mkdir -p "$storage"
    log "starting $(basename "$bin") (storage $storage, log $LOG_FILE)"
    # cd: the server auto-discovers ./secantusd.toml; keep the caller's cwd out of it.
    (
        cd "$STATE_DIR"
        # shellcheck disable=SC2016 # $$, $1 and $@ belong to the inner bash
        setsid bash -c 'echo $$ >"$1"; shift; exec nohup "$@"' _ "$PID_FILE" \
            "$bin" --host 127.0.0.1 --port 27017 --storage-path "$storage" $(secantus_durability_flag "$bin") \
            >>"$LOG_FILE" 2>&1 </dev/null &
    )
    if wait_for mongo_ready; then return 0; fi
    log "$(basename "$bin") did not answer on 127.0.0.1:27017 within ${WAIT}s; last log lines:"
    tail -n 5 "$LOG_FILE" >&2 || true
    # Stop only the process we started.
    if secantus_pid_alive; then kill "$(cat "$PID_FILE")" 2>/dev/null || true; fi
    rm -f "$PID_FILE"
    return 1
}

start_mongo() {
    # Our server from an earlier run may still be starting up.
    if secantus_pid_alive; then
        log "secantus pid $(cat "$PID_FILE") is running but not answering yet; waiting"
        if wait_for mongo_ready; then
            MONGO_USED=$(describe_existing 27017)
            return
        fi
        die "secantus pid $(cat "$PID_FILE") never answered on :27017 (see $LOG_FILE)"
    fi
    rm -f "$PID_FILE"

    # Separate storage per implementation: their on-disk formats need not match.
    local bin
    if bin=$(ensure_secantus_rs) && launch_secantus "$bin" "$STATE_DIR/mongo/rs"; then
        MONGO_USED="secantusd-rs $SECANTUS_VERSION ($bin, pid $(cat "$PID_FILE"))"
        return
    fi
    log "secantusd-rs unavailable; falling back to the Python server (slower)"
    bin=$(ensure_secantus_py) || die "could not install the Python SecantusDB server either"
    launch_secantus "$bin" "$STATE_DIR/mongo/py" ||
        die "no MongoDB server answered on 127.0.0.1:27017 (see $LOG_FILE)"
    MONGO_USED="secantusd-py ($bin, pid $(cat "$PID_FILE"))"
}

# Say who is answering on a port we left alone.
describe_existing() {
    local port=$1 pid=""
    if [[ $port == 27017 ]] && secantus_pid_alive; then
        pid=$(cat "$PID_FILE")
    elif command -v ss >/dev/null; then
        pid=$(ss -Hltnp "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2) || pid=""
    fi
    if [[ -n $pid && -r /proc/$pid/cmdline ]]; then
        printf 'already running: %s (pid %s)\n' "$(tr '\0' ' ' <"/proc/$pid/cmdline" | tr -s ' ' | sed 's/ $//' | cut -c1-80)" "$pid"
    else
        printf 'already answering on :%s\n' "$port"
    fi
}

# --- Docker --------------------------------------------------------------------

docker_usable() {
    command -v docker >/dev/null &&
        docker info >/dev/null 2>&1 &&
        docker compose version >/dev/null 2>&1
}

# docker compose up the services whose ports do not answer yet.
start_with_docker() {
    local services=("$@")
    log "docker compose up -d ${services[*]}"
    docker compose -f "$REPO/docker-compose.yml" up -d --wait "${services[@]}" ||
        die "docker compose up failed (docker compose -f $REPO/docker-compose.yml logs)"
}

# --- main ------------------------------------------------------------------------

main() {
    REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    STATE_DIR=${CHAT_STATE_DIR:-$HOME/.local/share/chat}
    WAIT=${CHAT_STORES_WAIT:-60}
    BUILD_WAIT=${CHAT_SECANTUS_BUILD_WAIT:-1200}
    PID_FILE=$STATE_DIR/secantus.pid
    LOG_FILE=$STATE_DIR/secantus.log
    mkdir -p "$STATE_DIR"
    export PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin"

    MYSQL_USED="" REDIS_USED="" MONGO_USED=""
    if secantus_pid_not_durable; then
        log "our SecantusDB (pid $(cat "$PID_FILE")) runs without --sync-on-commit; restarting it with it"
        stop_our_secantus
    fi
    mysql_ready && MYSQL_USED=$(describe_existing 3306)
    redis_ready && REDIS_USED=$(describe_existing 6379)
    mongo_ready && MONGO_USED=$(describe_existing 27017)

    if [[ -z $MYSQL_USED || -z $REDIS_USED || -z $MONGO_USED ]] && docker_usable; then
        local missing=()
        [[ -n $MYSQL_USED ]] || missing+=(mysql)
        [[ -n $REDIS_USED ]] || missing+=(redis)
        [[ -n $MONGO_USED ]] || missing+=(mongo)
        start_with_docker "${missing[@]}"
        wait_for mysql_ready || die "MariaDB (docker) did not answer on :3306 within ${WAIT}s"
        wait_for redis_ready || die "Redis (docker) did not answer on :6379 within ${WAIT}s"
        wait_for mongo_ready || die "MongoDB (docker) did not answer on :27017 within ${WAIT}s"
        [[ -n $MYSQL_USED ]] || MYSQL_USED="docker compose service mysql (mysql:8.4)"
        [[ -n $REDIS_USED ]] || REDIS_USED="docker compose service redis (redis:7-alpine)"
        [[ -n $MONGO_USED ]] || MONGO_USED="docker compose service mongo (mongo:7)"
    else
        # (plain `if`s: inside `a || f`, bash would switch `set -e` off for f)
        if [[ -z $MYSQL_USED ]]; then start_mysql; fi
        if [[ -z $REDIS_USED ]]; then start_redis; fi
        if [[ -z $MONGO_USED ]]; then start_mongo; fi
    fi

    log "MySQL   127.0.0.1:3306  - $MYSQL_USED"
    log "Redis   127.0.0.1:6379  - $REDIS_USED"
    log "MongoDB 127.0.0.1:27017 - $MONGO_USED"
}

if [[ ${BASH_SOURCE[0]} != "$0" ]]; then
    # Sourced: do the work in a child bash so `set -e` and `exit` stay out of the
    # caller's shell, then hand the caller the URLs the tests use.
    bash "${BASH_SOURCE[0]}" || return
    export CHAT_TEST_MYSQL_URL=${CHAT_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306}
    export CHAT_TEST_REDIS_URL=${CHAT_TEST_REDIS_URL:-redis://127.0.0.1:6379}
    export CHAT_TEST_MONGO_URL=${CHAT_TEST_MONGO_URL:-mongodb://127.0.0.1:27017}
else
    set -euo pipefail
    main
fi
