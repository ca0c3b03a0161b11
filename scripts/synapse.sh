#!/usr/bin/env bash
# Matrix Synapse on this machine, as a peer for `chat-bench peer-synapse` (the same
# pairs/window/rate shape as our `pairs` scenario). Optional: not part of the test command,
# nothing else needs it.
#
# Usage:
#   scripts/synapse.sh start   install (when missing or another version), recreate its database,
#                              write its config, start it in the background, wait until it
#                              answers, print `SYNAPSE <port> <pid> <version>` on stdout, return
#   scripts/synapse.sh stop    stop it (SIGTERM, wait) and drop its database
# Everything but the SYNAPSE line goes to stderr.
#
# Where things are:
#   venv      ~/.local/share/chat/synapse-venv (matrix-synapse $SYNAPSE_VERSION, psycopg2-binary)
#   state     ~/.local/share/chat/synapse: homeserver.yaml, log.config, homeserver.log (WARNING
#             and up), stdout.log, the signing key and secret, media/, synapse.pid
#   database  chat_bench_synapse on the shared PostgreSQL (127.0.0.1:5432, user postgres),
#             dropped and recreated at each start
#
# Knobs (environment):
#   CHAT_STATE_DIR      state folder (default ~/.local/share/chat)
#   CHAT_SYNAPSE_PORT   client listener port on 127.0.0.1 (default 18448)
#   CHAT_SYNAPSE_WAIT   seconds to wait for it to answer (default 120)
#   PYTHON              interpreter for the venv (default python3; Synapse needs >= 3.10)
set -euo pipefail

SYNAPSE_VERSION=1.163.2
STATE_DIR=${CHAT_STATE_DIR:-$HOME/.local/share/chat}
VENV=$STATE_DIR/synapse-venv
DIR=$STATE_DIR/synapse
PORT=${CHAT_SYNAPSE_PORT:-18448}
WAIT=${CHAT_SYNAPSE_WAIT:-120}
PYTHON=${PYTHON:-python3}
DB=chat_bench_synapse
PG=(-h 127.0.0.1 -p 5432 -U postgres)
export PGOPTIONS="--client-min-messages=warning"

log() { echo "synapse.sh: $*" >&2; }

installed_version() {
    "$VENV/bin/python" -c 'import synapse; print(synapse.__version__)' 2>/dev/null || true
}

install() {
    if [[ "$(installed_version)" == "$SYNAPSE_VERSION" ]]; then
        return
    fi
    log "installing matrix-synapse $SYNAPSE_VERSION into $VENV"
    local t0=$SECONDS
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip >&2
    # psycopg2-binary: the [postgres] extra builds psycopg2 from source (needs pg_config, a C compiler)
    "$VENV/bin/pip" install --quiet "matrix-synapse==$SYNAPSE_VERSION" psycopg2-binary >&2
    log "installed in $((SECONDS - t0)) s"
}

drop_db() {
    psql "${PG[@]}" -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >&2
}

create_db() {
    drop_db
    # Synapse refuses a database whose collation/ctype is not C
    createdb "${PG[@]}" --encoding=UTF8 --locale=C --template=template0 "$DB" >&2
}

write_config() {
    mkdir -p "$DIR/media"
    cat >"$DIR/log.config" <<EOF
version: 1
formatters:
  precise:
    format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s'
handlers:
  file:
    class: logging.FileHandler
    formatter: precise
    filename: $DIR/homeserver.log
loggers:
  synapse.storage.SQL:
    level: WARNING
root:
  level: WARNING
  handlers: [file]
disable_existing_loggers: false
EOF
    if [[ ! -s "$DIR/secret" ]]; then
        head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/secret"
    fi
    local secret
    secret=$(cat "$DIR/secret")
    # every rc_* limit lifted: the benchmark measures the server, not its throttles
    local lift='{per_second: 1000000, burst_count: 1000000}'
    cat >"$DIR/homeserver.yaml" <<EOF
server_name: localhost
public_baseurl: http://127.0.0.1:$PORT/
report_stats: false
signing_key_path: $DIR/localhost.signing.key
macaroon_secret_key: $secret
form_secret: $secret
log_config: $DIR/log.config
media_store_path: $DIR/media

listeners:
  # one plain-HTTP listener with the client API only: no TLS, no federation resource
  - port: $PORT
    bind_addresses: ['127.0.0.1']
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false

# no federation: no remote server is ever allowed, no key server asked
federation_domain_whitelist: []
trusted_key_servers: []
suppress_key_server_warning: true
allow_public_rooms_over_federation: false

database:
  name: psycopg2
  args:
    user: postgres
    host: 127.0.0.1
    port: 5432
    database: $DB
    cp_min: 5
    cp_max: 10

# no presence: presence updates would ride along every /sync and cost CPU per message
presence:
  enabled: false

enable_registration: true
enable_registration_without_verification: true
# cheap password hashes: registration is set-up, not what is measured
bcrypt_rounds: 4
url_preview_enabled: false
enable_metrics: false

rc_message: $lift
rc_registration: $lift
rc_registration_token_validity: $lift
rc_login:
  address: $lift
  account: $lift
  failed_attempts: $lift
rc_admin_redaction: $lift
rc_joins:
  local: $lift
  remote: $lift
rc_joins_per_room: $lift
rc_3pid_validation: $lift
rc_invites:
  per_room: $lift
  per_user: $lift
  per_issuer: $lift
rc_third_party_invite: $lift
rc_room_creation: $lift
rc_media_create: $lift
rc_reports: $lift
rc_key_requests: $lift
rc_user_directory: $lift
rc_profile: $lift
rc_delayed_event_mgmt: $lift
rc_presence:
  per_user: $lift
rc_federation:
  window_size: 1000
  sleep_limit: 1000000
  sleep_delay: 0
  reject_limit: 1000000
  concurrent: 1000000
EOF
    if [[ ! -f "$DIR/localhost.signing.key" ]]; then
        "$VENV/bin/python" -m synapse.app.homeserver -c "$DIR/homeserver.yaml" --generate-keys >&2
    fi
}

running_pid() {
    local pid
    pid=$(cat "$DIR/synapse.pid" 2>/dev/null || true)
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

stop_synapse() {
    local pid
    pid=$(running_pid)
    if [[ -n "$pid" ]]; then
        log "stopping Synapse (pid $pid)"
        kill -TERM "$pid"
        for _ in $(seq 1 300); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "still running after 30 s: SIGKILL"
            kill -KILL "$pid" || true
        fi
    fi
    rm -f "$DIR/synapse.pid"
}

start() {
    if [[ -n "$(running_pid)" ]]; then
        log "a Synapse of ours is running: stopping it first"
        stop_synapse
    fi
    if curl -fsS -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null || ss -Hltn "sport = :$PORT" | grep -q .; then
        log "port $PORT is taken by another process: set CHAT_SYNAPSE_PORT"
        exit 1
    fi
    install
    create_db
    write_config
    : >"$DIR/homeserver.log"
    nohup "$VENV/bin/python" -m synapse.app.homeserver -c "$DIR/homeserver.yaml" \
        >"$DIR/stdout.log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$DIR/synapse.pid"
    local url=http://127.0.0.1:$PORT
    local t0=$SECONDS
    until curl -fsS -o /dev/null "$url/_matrix/client/versions" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "Synapse exited; the end of its output:"
            tail -n 30 "$DIR/stdout.log" "$DIR/homeserver.log" >&2
            exit 1
        fi
        if ((SECONDS - t0 > WAIT)); then
            log "Synapse did not answer in $WAIT s"
            kill -TERM "$pid" || true
            exit 1
        fi
        sleep 0.5
    done
    if ! kill -0 "$pid" 2>/dev/null; then
        log "Synapse exited although the port answers"
        exit 1
    fi
    log "answering after $((SECONDS - t0)) s"
    echo "SYNAPSE $PORT $pid $(installed_version)"
}

case "${1:-}" in
    start) start ;;
    stop)
        stop_synapse
        drop_db
        ;;
    *)
        echo "usage: $0 start|stop" >&2
        exit 2
        ;;
esac
