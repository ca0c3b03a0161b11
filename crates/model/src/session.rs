//! Login sessions: the MySQL row. Only the token's SHA-256 (hex) is ever stored.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::sessions;

/// A `sessions` row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct Session {
    pub token_hash: String,
    pub user_id: u64,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

/// A new `sessions` row.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = sessions)]
pub struct NewSession {
    pub token_hash: String,
    pub user_id: u64,
    pub expires_at: NaiveDateTime,
}
