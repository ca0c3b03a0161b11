-- The outbox of membership changes: each change of a group writes its rows and its events here
-- in one transaction; an event is then recorded as a system message in the group's timeline
-- (MongoDB), at once or, after a failure, by the server's worker, and marked with its seq.
-- `event` is the JSON of the change (action, actor, users, name, role).
CREATE TABLE group_events (
    id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    group_id     BIGINT UNSIGNED NOT NULL,
    actor        BIGINT UNSIGNED NOT NULL,
    event        TEXT            NOT NULL,
    created_at   DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    recorded_seq BIGINT          NULL,
    PRIMARY KEY (id),
    KEY ix_group_events_pending (recorded_seq, id),
    CONSTRAINT fk_group_events_group FOREIGN KEY (group_id) REFERENCES `groups` (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
