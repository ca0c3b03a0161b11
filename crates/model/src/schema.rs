// The diesel schema of the migrations in `crates/dao/migrations`.

diesel::table! {
    users (id) {
        id -> Unsigned<Bigint>,
        user_name -> Varchar,
        nick_name -> Varchar,
        password_hash -> Varchar,
        avatar -> Varchar,
        status -> Tinyint,
        created_at -> Datetime,
        updated_at -> Datetime,
        deleted_at -> Nullable<Datetime>,
    }
}

diesel::table! {
    sessions (token_hash) {
        token_hash -> Char,
        user_id -> Unsigned<Bigint>,
        created_at -> Datetime,
        expires_at -> Datetime,
    }
}

diesel::joinable!(sessions -> users (user_id));

diesel::table! {
    groups (id) {
        id -> Unsigned<Bigint>,
        name -> Varchar,
        owner -> Unsigned<Bigint>,
        created_at -> Datetime,
        updated_at -> Datetime,
        deleted_at -> Nullable<Datetime>,
    }
}

diesel::table! {
    group_members (group_id, user_id) {
        group_id -> Unsigned<Bigint>,
        user_id -> Unsigned<Bigint>,
        role -> Varchar,
        joined_at -> Datetime,
        join_seq -> Bigint,
    }
}

diesel::table! {
    group_events (id) {
        id -> Unsigned<Bigint>,
        group_id -> Unsigned<Bigint>,
        actor -> Unsigned<Bigint>,
        event -> Text,
        created_at -> Datetime,
        recorded_seq -> Nullable<Bigint>,
    }
}

diesel::joinable!(group_members -> groups (group_id));
diesel::joinable!(group_events -> groups (group_id));
diesel::joinable!(group_members -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(users, sessions, groups, group_members, group_events);
