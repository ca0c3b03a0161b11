-- Groups and their members. A group's messages live in MongoDB (one timeline per group); here is
-- who may read and write it. `groups` is quoted: it is a reserved word in MySQL 8.
CREATE TABLE `groups` (
    id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    name       VARCHAR(120)    NOT NULL,
    owner      BIGINT UNSIGNED NOT NULL,
    created_at DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    deleted_at DATETIME(3)     NULL,
    PRIMARY KEY (id),
    KEY ix_groups_owner (owner),
    CONSTRAINT fk_groups_owner FOREIGN KEY (owner) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- role: 'owner', 'admin' or 'member'; join_seq: the group's seq at which the member joined (the
-- seq of the system message that says so), from which they see the timeline.
CREATE TABLE group_members (
    group_id  BIGINT UNSIGNED NOT NULL,
    user_id   BIGINT UNSIGNED NOT NULL,
    role      VARCHAR(8)      NOT NULL,
    joined_at DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    join_seq  BIGINT          NOT NULL DEFAULT 0,
    PRIMARY KEY (group_id, user_id),
    KEY ix_group_members_user (user_id),
    CONSTRAINT fk_group_members_group FOREIGN KEY (group_id) REFERENCES `groups` (id) ON DELETE CASCADE,
    CONSTRAINT fk_group_members_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = ascii COLLATE = ascii_bin;
