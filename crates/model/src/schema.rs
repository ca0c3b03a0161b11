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
diesel::allow_tables_to_appear_in_same_query!(users, sessions);
