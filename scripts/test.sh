#!/usr/bin/env bash
# The full check, as CI runs it: stores, fmt, clippy, layering, tests, browser tests, the
# HTTP API against its OpenAPI description, the short fault drill (one process, then two
# nodes).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

# One shared target dir, so fresh clones (CI) reuse earlier builds.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/chat-target}

step() { printf '\n==== %s ====\n' "$*"; }
die() {
    printf 'ERROR: %s\n' "$*" >&2
    exit 1
}

# no_deps PACKAGE REGEX: fail if PACKAGE's normal dependency tree has a crate
# whose name matches REGEX (e.g. 'actix-web|actix-ws').
no_deps() {
    local pkg=$1 pattern=$2 tree hits
    tree=$(cargo tree -p "$pkg" -e normal --prefix none) || die "cargo tree -p $pkg failed"
    hits=$(grep -oE "^($pattern) v[^ ]+" <<<"$tree" | sort -u) || true
    if [[ -n $hits ]]; then
        printf '%s\n' "$hits" >&2
        printf 'see: cargo tree -e normal -i <crate> -p %s\n' "$pkg" >&2
        die "layering: $pkg must not depend on the crates above"
    fi
    echo "ok: $pkg has none of: $pattern"
}

# Drop databases that crashed test runs left behind. Only those whose tables
# are all older than CHAT_TEST_DB_MAX_AGE_MIN minutes (default 60; empty ones
# count as new; 0 = drop all), so a test run going on at the same time keeps its
# databases. Best effort: never fails.
drop_stale_test_dbs() {
    local client re user pass host port age sql db args=()
    client=$(command -v mariadb || command -v mysql) || {
        echo "no mariadb/mysql client; skipping"
        return 0
    }
    # mysql://user[:password]@host[:port][/db]
    re='^mysql://([^:@/]+)(:([^@/]*))?@([^:/]+)(:([0-9]+))?'
    [[ $CHAT_TEST_MYSQL_URL =~ $re ]] || {
        echo "cannot parse CHAT_TEST_MYSQL_URL; skipping"
        return 0
    }
    user=${BASH_REMATCH[1]} pass=${BASH_REMATCH[3]} host=${BASH_REMATCH[4]} port=${BASH_REMATCH[6]:-3306}
    args=(--protocol=tcp -h "$host" -P "$port" -u "$user" --batch --skip-column-names)
    age=${CHAT_TEST_DB_MAX_AGE_MIN:-60}
    [[ $age =~ ^[0-9]+$ ]] || age=60
    sql="SELECT s.SCHEMA_NAME FROM information_schema.SCHEMATA s
         LEFT JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = s.SCHEMA_NAME
         WHERE s.SCHEMA_NAME LIKE 'chat\\_test\\_%'
         GROUP BY s.SCHEMA_NAME
         HAVING COALESCE(MAX(t.CREATE_TIME), NOW()) <= NOW() - INTERVAL $age MINUTE"
    local dbs
    dbs=$(MYSQL_PWD=$pass "$client" "${args[@]}" -e "$sql" 2>&1) || {
        echo "could not list test databases (ignored): $dbs"
        return 0
    }
    for db in $dbs; do
        echo "dropping $db"
        MYSQL_PWD=$pass "$client" "${args[@]}" -e "DROP DATABASE IF EXISTS \`$db\`" ||
            echo "could not drop $db (ignored)"
    done
    [[ -n $dbs ]] || echo "none"
}

step "stores"
# sourced: it also exports where the tests find the stores (CHAT_TEST_*_URL)
source scripts/stores.sh

step "cargo fmt --all --check"
cargo fmt --all --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "layering"
no_deps chat-model 'diesel-async|deadpool-redis|mongodb|actix-web'
no_deps chat-service 'actix-web|actix-ws'

step "drop stale chat_test_% databases"
drop_stale_test_dbs

if cargo nextest --version >/dev/null 2>&1; then
    step "cargo nextest run --workspace --no-fail-fast"
    cargo nextest run --workspace --no-fail-fast
else
    step "cargo test --workspace --no-fail-fast"
    cargo test --workspace --no-fail-fast
fi

# The web client in a real browser: Debian's Chromium driven by playwright-core (npm),
# against the debug server binary, under node's test runner (tests/browser/).
step "browser tests"
cargo build -p chat-server
if [[ ! -x /usr/bin/chromium ]]; then
    echo "installing Debian's chromium"
    sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y chromium
fi
command -v node >/dev/null && command -v npm >/dev/null || die "browser tests need node and npm"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
node --test tests/browser/

# The HTTP API against its own description (/openapi.json), by schemathesis (PyPI).
step "API against its OpenAPI description (schemathesis)"
bash scripts/api-check.sh

# Every store and the server broken in turn under load: nothing acknowledged may be lost.
# Twice: one server process, then two nodes of one service (the server's faults hit the first
# while the other serves on; each pair's two sides on different nodes).
step "fault drill (short)"
bash scripts/faults.sh --short
step "fault drill (short, two nodes)"
bash scripts/faults.sh --short --nodes 2

step "all checks passed"
