//! Accounts and sessions: register, log in, authenticate a token, log out.
//!
//! Passwords are kept only as argon2id hashes (the crate's defaults: 19 MiB, 2 passes, the
//! OWASP recommendation). Tokens are 32 random bytes; Redis keeps only their SHA-256, so a
//! copy of Redis does not hold usable tokens. Neither is ever logged.

use std::sync::Arc;

use argon2::{
    Argon2, PasswordHash, PasswordHasher as _, PasswordVerifier as _,
    password_hash::{SaltString, rand_core::OsRng},
};
use base64::Engine as _;
use chat_dao::{DaoError, DaoGroup, SessionDao, UserDao};
use chat_model::{LoginRequest, LoginResponse, NewUser, PublicUser, RegisterRequest, Settings, user::STATUS_ACTIVE};
use rand_core::RngCore as _;
use sha2::{Digest as _, Sha256};
use slog::{Logger, info, o};
use validator::Validate as _;

use crate::{
    error::{ServiceError, ServiceResult},
    hub::Hub,
};

/// The user behind a valid token, and the session's id (the token's hash) for logging out.
#[derive(Clone)]
pub struct AuthUser {
    pub id: u64,
    pub session: Arc<str>,
}

impl std::fmt::Debug for AuthUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthUser").field("id", &self.id).finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub struct RegisterService {
    users: UserDao,
    sessions: SessionDao,
    hub: Arc<Hub>,
    token_ttl_secs: u64,
    log: Logger,
    /// A hash of a random password, verified against when the user does not exist, so that
    /// an unknown user takes as long to refuse as a wrong password.
    decoy_hash: Arc<str>,
}

/// The SHA-256 of a token, in hex: the id of its session.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn hash_password(password: &str) -> ServiceResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ServiceError::Internal(format!("hashing a password: {e}")))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Runs CPU-heavy hashing off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> ServiceResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ServiceError::Internal(e.to_string()))
}

impl RegisterService {
    pub fn new(daos: &DaoGroup, settings: &Settings, hub: Arc<Hub>, log: &Logger) -> Self {
        let mut seed = [0u8; 24];
        OsRng.fill_bytes(&mut seed);
        let decoy_hash: Arc<str> = hash_password(&hex::encode(seed)).unwrap_or_default().into();
        RegisterService {
            users: daos.user.clone(),
            sessions: daos.session.clone(),
            hub,
            token_ttl_secs: settings.auth.token_ttl_secs,
            log: log.new(o!("service" => "register")),
            decoy_hash,
        }
    }

    /// Creates an account; returns its id.
    pub async fn register(&self, req: RegisterRequest) -> ServiceResult<u64> {
        if let Err(errors) = req.validate() {
            // report the first failing field, in the order of the form
            let fields = errors.field_errors();
            let (field, message) = ["nick_name", "user_name", "password"]
                .into_iter()
                .find_map(|f| {
                    fields.get(f).and_then(|es| es.first()).map(|e| {
                        (
                            f.to_string(),
                            e.message.as_ref().map(|m| m.to_string()).unwrap_or_else(|| format!("invalid {f}")),
                        )
                    })
                })
                .unwrap_or_else(|| ("body".into(), errors.to_string()));
            return Err(ServiceError::Validation { field, message });
        }
        let password = req.password;
        let password_hash = blocking(move || hash_password(&password)).await??;
        let new = NewUser {
            user_name: req.user_name,
            nick_name: req.nick_name,
            password_hash,
            avatar: String::new(),
            status: STATUS_ACTIVE,
        };
        match self.users.insert(&new).await {
            Ok(id) => {
                info!(self.log, "registered"; "user_id" => id, "user_name" => &new.user_name);
                Ok(id)
            }
            Err(DaoError::Duplicate) => Err(ServiceError::UserNameTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// Checks the password and opens a session.
    pub async fn login(&self, req: LoginRequest) -> ServiceResult<LoginResponse> {
        let user = self.users.find_by_name(&req.user_name).await?.filter(|u| u.status == STATUS_ACTIVE);
        let hash = user.as_ref().map(|u| u.password_hash.clone()).unwrap_or_else(|| self.decoy_hash.to_string());
        let password = req.password;
        let ok = blocking(move || verify_password(&password, &hash)).await?;
        let user = match user {
            Some(u) if ok => u,
            _ => return Err(ServiceError::InvalidCredentials),
        };
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        self.sessions.create(&token_hash(&token), user.id, self.token_ttl_secs).await?;
        info!(self.log, "logged in"; "user_id" => user.id);
        Ok(LoginResponse { token, expires_in: self.token_ttl_secs, user: PublicUser::from(&user) })
    }

    /// The user of a token, if it is a live session.
    pub async fn authenticate(&self, token: &str) -> ServiceResult<AuthUser> {
        if token.is_empty() || token.len() > 128 {
            return Err(ServiceError::Unauthenticated);
        }
        let session = token_hash(token);
        match self.sessions.user_of(&session).await? {
            Some(id) => Ok(AuthUser { id, session: session.into() }),
            None => Err(ServiceError::Unauthenticated),
        }
    }

    /// Ends the session at once; this process's connections opened with it are closed, and
    /// those on other processes close at their next ping.
    pub async fn logout(&self, user: &AuthUser) -> ServiceResult<()> {
        self.sessions.delete(&user.session).await?;
        let closed = self.hub.kick_session(&user.session);
        info!(self.log, "logged out"; "user_id" => user.id, "connections_closed" => closed);
        Ok(())
    }

    /// A user's public fields, by user name (without regard to case).
    pub async fn lookup(&self, user_name: &str) -> ServiceResult<PublicUser> {
        match self.users.find_by_name(user_name.trim()).await? {
            Some(u) if u.status == STATUS_ACTIVE => Ok(PublicUser::from(&u)),
            _ => Err(ServiceError::UserNotFound),
        }
    }

    pub async fn profile(&self, id: u64) -> ServiceResult<PublicUser> {
        let user = self.users.find_by_id(id).await?.ok_or(ServiceError::UserNotFound)?;
        Ok(PublicUser::from(&user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(!h.contains("correct horse"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn token_hash_is_hex_sha256() {
        let h = token_hash("abc");
        assert_eq!(h.len(), 64);
        assert_eq!(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
