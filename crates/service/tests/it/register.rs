use std::{net::IpAddr, time::Duration};

use chat_model::{LoginRequest, RegisterRequest};
use chat_service::ServiceError;

use crate::Env;

const ADDRESS: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)));

fn reg(nick: &str, user: &str, pw: &str) -> RegisterRequest {
    RegisterRequest { nick_name: nick.into(), user_name: user.into(), password: pw.into() }
}

fn login(user: &str, pw: &str) -> LoginRequest {
    LoginRequest { user_name: user.into(), password: pw.into() }
}

#[tokio::test]
async fn register_stores_only_an_argon2id_hash() {
    let env = Env::new().await;
    let id = env.services.register.register(reg("Alice", "alice_01", "s3cret-pass"), None).await.unwrap();
    let row = env.daos.user.find_by_id(id).await.unwrap().unwrap();
    assert!(row.password_hash.starts_with("$argon2id$"));
    assert!(!row.password_hash.contains("s3cret-pass"));
    assert_eq!(env.services.register.profile(id).await.unwrap().nick_name, "Alice");
}

#[tokio::test]
async fn register_names_the_failing_field_and_stores_nothing() {
    let env = Env::new().await;
    for (r, field) in [
        (reg("A", "alice_01", "s3cret-pass"), "nick_name"),
        (reg("Alice", "al", "s3cret-pass"), "user_name"),
        (reg("Alice", "alice 01", "s3cret-pass"), "user_name"),
        (reg("Alice", "alice_01", "short"), "password"),
    ] {
        match env.services.register.register(r, None).await {
            Err(ServiceError::Validation { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected a validation error on {field}, got {other:?}"),
        }
    }
    assert!(env.daos.user.find_by_name("alice_01").await.unwrap().is_none());
}

#[tokio::test]
async fn a_taken_user_name_is_a_conflict() {
    let env = Env::new().await;
    env.services.register.register(reg("Alice", "alice_01", "s3cret-pass"), None).await.unwrap();
    let again = env.services.register.register(reg("Other", "ALICE_01", "another-pass"), None).await;
    assert!(matches!(again, Err(ServiceError::UserNameTaken)), "{again:?}");
}

#[tokio::test]
async fn login_authenticate_logout() {
    let env = Env::new().await;
    let r = &env.services.register;
    let id = r.register(reg("Bob", "bob_0001", "bob-password"), None).await.unwrap();
    let session = r.login(login("bob_0001", "bob-password"), None).await.unwrap();
    assert_eq!(session.user.id, id);
    assert_eq!(session.expires_in, 7 * 24 * 3600);
    assert!(session.token.len() >= 43, "at least 256 bits in base64");
    let user = r.authenticate(&session.token).await.unwrap();
    assert_eq!(user.id, id);
    // a second login is a second session
    let other = r.login(login("bob_0001", "bob-password"), None).await.unwrap();
    assert_ne!(other.token, session.token);
    r.logout(&user).await.unwrap();
    assert!(matches!(r.authenticate(&session.token).await, Err(ServiceError::Unauthenticated)));
    assert_eq!(r.authenticate(&other.token).await.unwrap().id, id);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_the_same_error() {
    let env = Env::new().await;
    let r = &env.services.register;
    r.register(reg("Bob", "bob_0001", "bob-password"), None).await.unwrap();
    let wrong = r.login(login("bob_0001", "not-the-password"), None).await.unwrap_err();
    let unknown = r.login(login("nobody_00", "bob-password"), None).await.unwrap_err();
    assert!(matches!(wrong, ServiceError::InvalidCredentials));
    assert!(matches!(unknown, ServiceError::InvalidCredentials));
    assert_eq!(wrong.to_string(), unknown.to_string());
    assert!(matches!(r.authenticate("made-up-token").await, Err(ServiceError::Unauthenticated)));
    assert!(matches!(r.authenticate("").await, Err(ServiceError::Unauthenticated)));
}

#[tokio::test]
async fn token_ttl_comes_from_the_configuration() {
    let env = Env::with(|s| s.auth.token_ttl_secs = 1).await;
    let r = &env.services.register;
    r.register(reg("Bob", "bob_0001", "bob-password"), None).await.unwrap();
    let s = r.login(login("bob_0001", "bob-password"), None).await.unwrap();
    assert_eq!(s.expires_in, 1);
    assert!(r.authenticate(&s.token).await.is_ok());
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert!(matches!(r.authenticate(&s.token).await, Err(ServiceError::Unauthenticated)));
}

/// Deletes every Redis key of the test, as a Redis restart without persistence would.
pub async fn flush_redis(env: &Env) {
    let client = redis::Client::open(env.ts.settings.redis.url.as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{}:*", env.ts.name())).query_async(&mut c).await.unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL").arg(keys).query_async(&mut c).await.unwrap();
    }
}

#[tokio::test]
async fn sessions_survive_the_loss_of_redis_and_logout_ends_them_in_both() {
    let env = Env::new().await;
    let r = &env.services.register;
    let id = r.register(reg("Bob", "bob_0001", "bob-password"), None).await.unwrap();
    let s = r.login(login("bob_0001", "bob-password"), None).await.unwrap();
    flush_redis(&env).await;
    let user = r.authenticate(&s.token).await.unwrap();
    assert_eq!(user.id, id, "still logged in: the session is in MySQL");
    r.logout(&user).await.unwrap();
    assert!(matches!(r.authenticate(&s.token).await, Err(ServiceError::Unauthenticated)));
    flush_redis(&env).await;
    assert!(matches!(r.authenticate(&s.token).await, Err(ServiceError::Unauthenticated)), "gone from MySQL too");
}

#[tokio::test]
async fn a_disabled_account_cannot_authenticate_at_once() {
    let env = Env::new().await;
    let r = &env.services.register;
    let id = r.register(reg("Bob", "bob_0001", "bob-password"), None).await.unwrap();
    let s = r.login(login("bob_0001", "bob-password"), None).await.unwrap();
    assert!(r.authenticate(&s.token).await.is_ok());
    env.sql(&format!("UPDATE users SET status = 0 WHERE id = {id}")).await;
    assert!(matches!(r.authenticate(&s.token).await, Err(ServiceError::Unauthenticated)));
    assert!(matches!(r.login(login("bob_0001", "bob-password"), None).await, Err(ServiceError::InvalidCredentials)));
}

#[tokio::test]
async fn failed_logins_are_throttled_per_account_and_a_success_resets_them() {
    let env = Env::with(|s| {
        s.limits.login_failures = 3;
        s.limits.ip_attempts = 1000;
    })
    .await;
    let r = &env.services.register;
    r.register(reg("Bob", "bob_0001", "bob-password"), None).await.unwrap();
    for _ in 0..2 {
        assert!(matches!(
            r.login(login("bob_0001", "wrong-password"), ADDRESS).await,
            Err(ServiceError::InvalidCredentials)
        ));
    }
    // a success within the limit clears the count
    r.login(login("bob_0001", "bob-password"), ADDRESS).await.unwrap();
    for _ in 0..3 {
        assert!(matches!(
            r.login(login("BOB_0001", "wrong-password"), ADDRESS).await,
            Err(ServiceError::InvalidCredentials)
        ));
    }
    // the fourth attempt is refused before the password is looked at, even the right one
    match r.login(login("bob_0001", "bob-password"), ADDRESS).await {
        Err(ServiceError::RateLimited { retry_after_ms }) => assert!((1000..=900_000).contains(&retry_after_ms)),
        other => panic!("expected the throttle, got {other:?}"),
    }
    // another account is not affected
    r.register(reg("Ann", "ann_0001", "ann-password"), None).await.unwrap();
    r.login(login("ann_0001", "ann-password"), ADDRESS).await.unwrap();
}

#[tokio::test]
async fn attempts_are_throttled_per_address() {
    let env = Env::with(|s| s.limits.ip_attempts = 3).await;
    let r = &env.services.register;
    r.register(reg("Bob", "bob_0001", "bob-password"), ADDRESS).await.unwrap();
    r.login(login("bob_0001", "bob-password"), ADDRESS).await.unwrap();
    assert!(matches!(r.login(login("nobody_01", "x-password"), ADDRESS).await, Err(ServiceError::InvalidCredentials)));
    assert!(matches!(r.login(login("bob_0001", "bob-password"), ADDRESS).await, Err(ServiceError::RateLimited { .. })));
    assert!(matches!(
        r.register(reg("Ann", "ann_0001", "ann-password"), ADDRESS).await,
        Err(ServiceError::RateLimited { .. })
    ));
    let elsewhere = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2)));
    r.login(login("bob_0001", "bob-password"), elsewhere).await.unwrap();
}

/// Hashing runs a bounded number at a time: with one slot and a short wait, concurrent
/// attempts beyond what the slot can serve in time are refused as busy, not queued forever.
#[tokio::test]
async fn hashing_is_bounded() {
    let env = Env::with(|s| {
        s.auth.hash_concurrency = 1;
        s.auth.hash_wait_ms = 1;
        s.limits.ip_attempts = 1000;
        s.limits.login_failures = 1000;
    })
    .await;
    let r = env.services.register.clone();
    r.register(reg("Bob", "bob_0001", "bob-password"), None).await.unwrap();
    let attempts = (0..8).map(|_| {
        let r = r.clone();
        tokio::spawn(async move { r.login(login("bob_0001", "wrong-password"), None).await })
    });
    let results: Vec<_> = futures_util::future::join_all(attempts).await.into_iter().map(|j| j.unwrap()).collect();
    let busy = results.iter().filter(|r| matches!(r, Err(ServiceError::Busy))).count();
    let refused = results.iter().filter(|r| matches!(r, Err(ServiceError::InvalidCredentials))).count();
    assert!(busy > 0 && refused > 0, "busy {busy}, refused {refused}");
    assert_eq!(busy + refused, 8);
    tokio::time::sleep(Duration::from_millis(10)).await;
}
