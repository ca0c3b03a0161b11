# The chat server image: docker compose up -d (see docker-compose.yml).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p chat-server

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /app chat
WORKDIR /app
COPY --from=build /src/target/release/chat-server /usr/local/bin/chat-server
COPY config /app/config
RUN mkdir -p /app/log && chown chat /app/log
USER chat
ENV CHAT__SERVER__HOST=0.0.0.0
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --retries=5 CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
CMD ["chat-server", "--config", "/app/config"]
