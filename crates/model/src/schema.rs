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
