//! Accounts and sessions: register, log in, authenticate a token, log out.
//!
//! Passwords are kept only as argon2id hashes (the crate's defaults: 19 MiB, 2 passes, the
//! OWASP recommendation), computed at most `auth.hash_concurrency` at a time, so the memory
//! they take is bounded whatever the number of attempts. Tokens are 32 random bytes; the
//! stores keep only their SHA-256, so a copy of them does not hold usable tokens. Neither is
//! ever logged.
//!
//! Login and register attempts are throttled in Redis, per client address and (for login) per
//! account: an account's failures are counted up front and forgotten on success. A Redis that
//! does not answer does not lock anyone out: the attempt goes on (and the hashing bound still
//! holds).

use std::{net::IpAddr, sync::Arc, time::Duration};

use argon2::{
    Argon2, PasswordHash, PasswordHasher as _, PasswordVerifier as _,
    password_hash::{SaltString, rand_core::OsRng},
};
use base64::Engine as _;
use chat_dao::{DaoError, DaoGroup, SessionDao, ThrottleDao, UserDao, Verdict, throttle::Counter};
use chat_model::{
    LoginRequest, LoginResponse, NewUser, PublicUser, RegisterRequest, Settings, config::LimitSettings,
    user::STATUS_ACTIVE,
};
use rand_core::RngCore as _;
use sha2::{Digest as _, Sha256};
use slog::{Logger, info, o, warn};
use tokio::sync::Semaphore;
use validator::Validate as _;

use crate::{
    cluster::Delivery,
    error::{ServiceError, ServiceResult},
    limits::Limits,
    metrics::Metrics,
};

/// Counter kinds of the throttles.
const LOGIN_ACCOUNT: &str = "login";
const AUTH_ADDRESS: &str = "auth-ip";

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
    throttle: ThrottleDao,
    delivery: Delivery,
    hasher: Hasher,
    limits: Limits,
    attempts: LimitSettings,
    token_ttl_secs: u64,
    metrics: Metrics,
    log: Logger,
    /// A hash of a random password, verified against when the user does not exist, so that
    /// an unknown user takes as long to refuse as a wrong password.
    decoy_hash: Arc<str>,
}

/// Runs password hashing off the async workers, a bounded number at a time.
#[derive(Clone)]
struct Hasher {
    slots: Arc<Semaphore>,
    wait: Duration,
}

impl Hasher {
    /// Runs `f` on a blocking thread once a slot is free; [`ServiceError::Busy`] when none
    /// frees up within the wait.
    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> ServiceResult<T> {
        let slot = tokio::time::timeout(self.wait, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| ServiceError::Busy)?
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            f()
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))
    }
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

impl RegisterService {
    pub(crate) fn new(
        daos: &DaoGroup,
        settings: &Settings,
        delivery: Delivery,
        limits: Limits,
        metrics: Metrics,
        log: &Logger,
    ) -> Self {
        let mut seed = [0u8; 24];
        OsRng.fill_bytes(&mut seed);
        let decoy_hash: Arc<str> = hash_password(&hex::encode(seed)).unwrap_or_default().into();
        RegisterService {
            users: daos.user.clone(),
            sessions: daos.session.clone(),
            throttle: daos.throttle.clone(),
            delivery,
            hasher: Hasher {
                slots: Arc::new(Semaphore::new(settings.auth.hash_concurrency.max(1))),
                wait: Duration::from_millis(settings.auth.hash_wait_ms),
            },
            limits,
            attempts: settings.limits.clone(),
            token_ttl_secs: settings.auth.token_ttl_secs,
            metrics,
            log: log.new(o!("service" => "register")),
            decoy_hash,
        }
    }

    /// Counts an attempt on the throttles (in order; the first over its limit refuses it).
    /// A throttle store that does not answer lets the attempt through.
    async fn throttled(&self, counters: &[Counter<'_>], limit: &'static str) -> ServiceResult<()> {
        match self.throttle.hit(counters).await {
            Ok(Verdict::Allowed) => Ok(()),
            Ok(Verdict::Limited { retry_after_secs }) => {
                self.metrics.throttle(limit);
                Err(ServiceError::RateLimited { retry_after_ms: retry_after_secs.saturating_mul(1000) })
            }
            Err(e) => {
                warn!(self.log, "attempt not counted: the throttle store is unavailable"; "limit" => limit, "error" => %e);
                Ok(())
            }
        }
    }

    fn address_counter<'a>(&self, subject: &'a str) -> Counter<'a> {
        Counter {
            kind: AUTH_ADDRESS,
            subject,
            limit: self.attempts.ip_attempts,
            window_secs: self.attempts.ip_window_secs,
        }
    }

    /// Creates an account; returns its id. `client` is the address the attempt came from.
    pub async fn register(&self, req: RegisterRequest, client: Option<IpAddr>) -> ServiceResult<u64> {
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
        let address = client.map(|ip| ip.to_string()).unwrap_or_default();
        self.throttled(&[self.address_counter(&address)], "register").await?;
        let password = req.password;
        let password_hash = self.hasher.run(move || hash_password(&password)).await??;
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

    /// Checks the password and opens a session. `client` is the address the attempt came from.
    pub async fn login(&self, req: LoginRequest, client: Option<IpAddr>) -> ServiceResult<LoginResponse> {
        let address = client.map(|ip| ip.to_string()).unwrap_or_default();
        let account = account_key(&req.user_name);
        let account_counter = Counter {
            kind: LOGIN_ACCOUNT,
            subject: &account,
            limit: self.attempts.login_failures,
            window_secs: self.attempts.login_window_secs,
        };
        self.throttled(&[self.address_counter(&address), account_counter], "login").await?;
        let user = self.users.find_by_name(&req.user_name).await?.filter(|u| u.status == STATUS_ACTIVE);
        let hash = user.as_ref().map(|u| u.password_hash.clone()).unwrap_or_else(|| self.decoy_hash.to_string());
        let password = req.password;
        let ok = self.hasher.run(move || verify_password(&password, &hash)).await?;
        let user = match user {
            Some(u) if ok => u,
            _ => return Err(ServiceError::InvalidCredentials),
        };
        if let Err(e) = self.throttle.clear(LOGIN_ACCOUNT, &account).await {
            warn!(self.log, "login failures not cleared"; "user_id" => user.id, "error" => %e);
        }
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        self.sessions.create(&token_hash(&token), user.id, self.token_ttl_secs).await?;
        info!(self.log, "logged in"; "user_id" => user.id);
        Ok(LoginResponse { token, expires_in: self.token_ttl_secs, user: PublicUser::from(&user) })
    }

    /// The user of a token, if it is a live session of an account that may be used (the
    /// account's status is checked every time: a disabled account's sessions stop at once).
    pub async fn authenticate(&self, token: &str) -> ServiceResult<AuthUser> {
        if token.is_empty() || token.len() > 128 {
            return Err(ServiceError::Unauthenticated);
        }
        let session = token_hash(token);
        let id = self.sessions.user_of(&session).await?.ok_or(ServiceError::Unauthenticated)?;
        if self.users.active_among(&[id]).await?.is_empty() {
            return Err(ServiceError::Unauthenticated);
        }
        Ok(AuthUser { id, session: session.into() })
    }

    /// Ends the session at once, in MySQL and in its cache; the connections opened with it are
    /// closed, on this node at once and on the others as they hear of it (or at their
    /// heartbeat, should they not).
    pub async fn logout(&self, user: &AuthUser) -> ServiceResult<()> {
        self.sessions.delete(&user.session).await?;
        let closed = self.delivery.end_session(&user.session).await;
        info!(self.log, "logged out"; "user_id" => user.id, "connections_closed" => closed);
        Ok(())
    }

    /// A user's public fields, by user name (without regard to case), for `caller` (whose
    /// rate of reads is limited).
    pub async fn lookup(&self, caller: u64, user_name: &str) -> ServiceResult<PublicUser> {
        self.limits.read(caller)?;
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

/// The throttle's name for an account: the user name as the database compares it (without
/// regard to case), bounded in length; a name no account can have shares one counter.
fn account_key(user_name: &str) -> String {
    let name = user_name.trim().to_lowercase();
    if chat_model::user::validate_user_name(&name).is_ok() { name } else { "~invalid".into() }
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
