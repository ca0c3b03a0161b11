-- Login sessions, kept durably (Redis holds a cache of them): only the token's SHA-256 is stored.
CREATE TABLE sessions (
    token_hash CHAR(64)        NOT NULL,
    user_id    BIGINT UNSIGNED NOT NULL,
    created_at DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    expires_at DATETIME(3)     NOT NULL,
    PRIMARY KEY (token_hash),
    KEY ix_sessions_user (user_id),
    KEY ix_sessions_expires_at (expires_at),
    CONSTRAINT fk_sessions_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = ascii COLLATE = ascii_bin;
