use chat_model::{LoginRequest, RegisterRequest};
use chat_service::ServiceError;

use crate::Env;

fn reg(nick: &str, user: &str, pw: &str) -> RegisterRequest {
    RegisterRequest { nick_name: nick.into(), user_name: user.into(), password: pw.into() }
}

fn login(user: &str, pw: &str) -> LoginRequest {
    LoginRequest { user_name: user.into(), password: pw.into() }
}

#[tokio::test]
async fn register_stores_only_an_argon2id_hash() {
    let env = Env::new().await;
    let id = env.services.register.register(reg("Alice", "alice_01", "s3cret-pass")).await.unwrap();
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
        match env.services.register.register(r).await {
            Err(ServiceError::Validation { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected a validation error on {field}, got {other:?}"),
        }
    }
    assert!(env.daos.user.find_by_name("alice_01").await.unwrap().is_none());
}

#[tokio::test]
async fn a_taken_user_name_is_a_conflict() {
    let env = Env::new().await;
    env.services.register.register(reg("Alice", "alice_01", "s3cret-pass")).await.unwrap();
    let again = env.services.register.register(reg("Other", "ALICE_01", "another-pass")).await;
    assert!(matches!(again, Err(ServiceError::UserNameTaken)), "{again:?}");
}

#[tokio::test]
async fn login_authenticate_logout() {
    let env = Env::new().await;
    let r = &env.services.register;
    let id = r.register(reg("Bob", "bob_0001", "bob-password")).await.unwrap();
    let session = r.login(login("bob_0001", "bob-password")).await.unwrap();
    assert_eq!(session.user.id, id);
    assert_eq!(session.expires_in, 7 * 24 * 3600);
    assert!(session.token.len() >= 43, "at least 256 bits in base64");
    let user = r.authenticate(&session.token).await.unwrap();
    assert_eq!(user.id, id);
    // a second login is a second session
    let other = r.login(login("bob_0001", "bob-password")).await.unwrap();
    assert_ne!(other.token, session.token);
    r.logout(&user).await.unwrap();
    assert!(matches!(r.authenticate(&session.token).await, Err(ServiceError::Unauthenticated)));
    assert_eq!(r.authenticate(&other.token).await.unwrap().id, id);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_the_same_error() {
    let env = Env::new().await;
    let r = &env.services.register;
    r.register(reg("Bob", "bob_0001", "bob-password")).await.unwrap();
    let wrong = r.login(login("bob_0001", "not-the-password")).await.unwrap_err();
    let unknown = r.login(login("nobody_00", "bob-password")).await.unwrap_err();
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
    r.register(reg("Bob", "bob_0001", "bob-password")).await.unwrap();
    let s = r.login(login("bob_0001", "bob-password")).await.unwrap();
    assert_eq!(s.expires_in, 1);
    assert!(r.authenticate(&s.token).await.is_ok());
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert!(matches!(r.authenticate(&s.token).await, Err(ServiceError::Unauthenticated)));
}
