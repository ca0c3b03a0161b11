//! Users: the MySQL row, the bodies of `/user/*`, and the public view of a user.

use std::fmt;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use validator::{Validate, ValidationError};

use crate::schema::users;

/// `users.status` of an account that may log in.
pub const STATUS_ACTIVE: i8 = 1;
/// An account an administrator disabled: it cannot log in, its sessions do not work.
pub const STATUS_DISABLED: i8 = 2;

/// A row of `users`. `Debug` leaves the password hash out.
#[derive(Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
#[diesel(check_for_backend(diesel::mysql::Mysql))]
pub struct User {
    pub id: u64,
    pub user_name: String,
    pub nick_name: String,
    pub password_hash: String,
    pub avatar: String,
    pub status: i8,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub deleted_at: Option<NaiveDateTime>,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("user_name", &self.user_name)
            .field("nick_name", &self.nick_name)
            .field("password_hash", &"<redacted>")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// The values of a new `users` row.
#[derive(Clone, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser {
    pub user_name: String,
    pub nick_name: String,
    pub password_hash: String,
    pub avatar: String,
    pub status: i8,
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("user_name", &self.user_name)
            .field("nick_name", &self.nick_name)
            .field("password_hash", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// What anyone may see of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PublicUser {
    pub id: u64,
    pub user_name: String,
    pub nick_name: String,
}

impl From<&User> for PublicUser {
    fn from(u: &User) -> Self {
        PublicUser { id: u.id, user_name: u.user_name.clone(), nick_name: u.nick_name.clone() }
    }
}

/// `POST /user/register`. Lengths are counted in characters, not bytes.
#[derive(Clone, Deserialize, Serialize, Validate, utoipa::ToSchema)]
pub struct RegisterRequest {
    /// 2 to 10 characters.
    #[schema(min_length = 2, max_length = 10)]
    #[validate(length(min = 2, max = 10, message = "must be 2 to 10 characters"))]
    pub nick_name: String,
    /// 5 to 15 ASCII letters, digits or `_`; unique.
    #[schema(pattern = "^[A-Za-z0-9_]{5,15}$")]
    #[validate(custom(function = "validate_user_name"))]
    pub user_name: String,
    /// 8 to 64 characters.
    #[schema(min_length = 8, max_length = 64, format = Password)]
    #[validate(length(min = 8, max = 64, message = "must be 8 to 64 characters"))]
    pub password: String,
}

impl fmt::Debug for RegisterRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisterRequest")
            .field("nick_name", &self.nick_name)
            .field("user_name", &self.user_name)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// user_name: 5 to 15 of ASCII letters, digits and `_`.
pub fn validate_user_name(name: &str) -> Result<(), ValidationError> {
    let len_ok = (5..=15).contains(&name.chars().count());
    let chars_ok = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if len_ok && chars_ok {
        Ok(())
    } else {
        Err(ValidationError::new("user_name").with_message("must be 5 to 15 letters, digits or _".into()))
    }
}

/// The register reply's `data`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RegisterResponse {
    pub id: u64,
}

/// `POST /user/login`.
#[derive(Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct LoginRequest {
    pub user_name: String,
    #[schema(format = Password)]
    pub password: String,
}

impl fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRequest").field("user_name", &self.user_name).field("password", &"<redacted>").finish()
    }
}

/// The login reply's `data`. `Debug` leaves the token out.
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoginResponse {
    pub token: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
    pub user: PublicUser,
}

impl fmt::Debug for LoginResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginResponse")
            .field("token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .field("user", &self.user)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(nick: &str, user: &str, pw: &str) -> RegisterRequest {
        RegisterRequest { nick_name: nick.into(), user_name: user.into(), password: pw.into() }
    }

    fn failing_field(r: &RegisterRequest) -> Option<String> {
        r.validate().err().map(|e| e.field_errors().keys().next().map(|k| k.to_string()).unwrap_or_default())
    }

    #[test]
    fn accepts_the_bounds() {
        assert!(req("ab", "abcde", "12345678").validate().is_ok());
        assert!(req("十个字符十个字符十个", "abc_def_ghi_123", &"x".repeat(64)).validate().is_ok());
    }

    #[test]
    fn names_the_failing_field() {
        assert_eq!(failing_field(&req("a", "abcde", "12345678")).as_deref(), Some("nick_name"));
        assert_eq!(failing_field(&req("abcdefghijk", "abcde", "12345678")).as_deref(), Some("nick_name"));
        assert_eq!(failing_field(&req("ab", "abcd", "12345678")).as_deref(), Some("user_name"));
        assert_eq!(failing_field(&req("ab", "abc-de", "12345678")).as_deref(), Some("user_name"));
        assert_eq!(failing_field(&req("ab", "abcdefghijklmnop", "12345678")).as_deref(), Some("user_name"));
        assert_eq!(failing_field(&req("ab", "abcde", "1234567")).as_deref(), Some("password"));
        assert_eq!(failing_field(&req("ab", "abcde", &"x".repeat(65))).as_deref(), Some("password"));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let r = req("ab", "abcde", "hunter2hunter2");
        assert!(!format!("{r:?}").contains("hunter2"));
        let l = LoginRequest { user_name: "abcde".into(), password: "hunter2hunter2".into() };
        assert!(!format!("{l:?}").contains("hunter2"));
    }
}
