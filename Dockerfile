# The chat server image: docker compose up -d (see docker-compose.yml).
#
# Four stages, so that the dependencies are built once and kept in Docker's layer cache while
# only our own code changes (cargo-chef):
#   chef     the toolchain with cargo-chef
#   planner  the recipe: every Cargo.toml and Cargo.lock of the workspace, nothing else
#   builder  the dependencies from the recipe alone (cached while it stays the same), then the
#            server from the whole source
#   runtime  Debian slim with the binary and the configuration
#
# lukemathwalker/cargo-chef publishes an image per Rust release on top of the official
# rust:<version>-bookworm one, so this is the same toolchain and Debian as a plain
# rust:1.95-bookworm with cargo-chef installed, without compiling cargo-chef on a cold cache.
# If the tag is ever missing, the equivalent is:
#   FROM rust:1.95-bookworm AS chef
#   RUN cargo install cargo-chef --locked
FROM lukemathwalker/cargo-chef:latest-rust-1.95-bookworm AS chef
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# The same package, profile and features as the build below, or its dependencies would not be
# the ones cached here.
RUN cargo chef cook --release --locked -p chat-server --recipe-path recipe.json
# The whole source (.dockerignore keeps target/ out, so the cooked dependencies stay), including
# crates/api/web/, which rust-embed puts into the release binary at compile time.
COPY . .
RUN cargo build --release --locked -p chat-server

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /app chat
WORKDIR /app
COPY --from=builder /src/target/release/chat-server /usr/local/bin/chat-server
COPY config /app/config
# log/ stays writable for whoever turns the log file back on (CHAT__LOG__DIR=log)
RUN mkdir -p /app/log && chown chat /app/log
USER chat
ENV CHAT__SERVER__HOST=0.0.0.0
# Logs as JSON lines on standard output, for `docker logs` and whatever collects them; no log
# file inside the container.
ENV CHAT__LOG__FORMAT=json
ENV CHAT__LOG__DIR=""
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --retries=5 CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
CMD ["chat-server", "--config", "/app/config"]
