//! Keys checked against a real key store (the embedded SQLite database): a made key works with
//! its role and tenants, a wrong or malformed one does not, a revoked one stops working within
//! the cache's lifetime, and only its hash is stored.

use std::sync::Arc;
use std::time::Duration;

use imgpipe_auth::keys_api::{MakeKeyError, make_key};
use imgpipe_auth::{Authenticator, CACHE_TTL, Denied};
use imgpipe_contract::keys::{KeyStore, Role};
use imgpipe_db_sqlite::SqliteDb;

async fn store(dir: &tempfile::TempDir) -> Arc<SqliteDb> {
    Arc::new(
        SqliteDb::open(&dir.path().join("metadata.sqlite"))
            .await
            .expect("open"),
    )
}

#[tokio::test]
async fn a_made_key_acts_with_its_role_and_tenants() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = store(&dir).await;
    let (record, key) = make_key(keys.as_ref(), Role::Editor, vec!["news".into()], "desk")
        .await
        .expect("made");
    let auth = Authenticator::new(keys.clone());
    let who = auth.check(Some(&key)).await.expect("accepted");
    assert_eq!(
        (who.role, who.tenants.clone(), who.key_id.clone()),
        (Role::Editor, vec!["news".to_owned()], record.id.clone())
    );
    assert!(who.require(Role::Uploader).is_ok() && who.require(Role::Editor).is_ok());
    assert_eq!(
        who.require(Role::Admin),
        Err(Denied::Forbidden(Role::Admin))
    );

    let stored = keys
        .key_by_prefix(&record.prefix)
        .await
        .expect("lookup")
        .expect("stored");
    assert_ne!(stored.hash, key);
    let file = std::fs::read(dir.path().join("metadata.sqlite")).expect("db file");
    let secret = &key[13..];
    assert!(
        !file.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the key itself is never stored"
    );
}

#[tokio::test]
async fn wrong_missing_and_malformed_keys_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = store(&dir).await;
    let (_, key) = make_key(keys.as_ref(), Role::Admin, vec!["a".into()], "")
        .await
        .expect("made");
    let auth = Authenticator::new(keys);
    let mut wrong = key.clone();
    wrong.replace_range(key.len() - 4.., "AAAA");
    for presented in [None, Some("")] {
        assert_eq!(
            auth.check(presented).await,
            Err(Denied::Unauthenticated),
            "{presented:?}"
        );
    }
    for presented in [Some("imgpipe"), Some(wrong.as_str())] {
        assert_eq!(
            auth.check(presented).await,
            Err(Denied::InvalidKey),
            "{presented:?}"
        );
    }
}

#[tokio::test]
async fn a_revoked_key_stops_working_within_the_cache_lifetime() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = store(&dir).await;
    let (record, key) = make_key(keys.as_ref(), Role::Uploader, vec!["a".into()], "")
        .await
        .expect("made");
    // Two processes: one revokes, the other had the key cached.
    let other_process = Authenticator::new(store(&dir).await);
    assert!(other_process.check(Some(&key)).await.is_ok());
    keys.revoke_key(&record.id, chrono::Utc::now())
        .await
        .expect("revoked");
    tokio::time::sleep(CACHE_TTL + Duration::from_millis(200)).await;
    assert_eq!(
        other_process.check(Some(&key)).await,
        Err(Denied::InvalidKey)
    );
    let again = keys
        .revoke_key(&record.id, chrono::Utc::now())
        .await
        .expect("revoking twice is harmless");
    assert!(!again.is_active());
}

#[tokio::test]
async fn keys_are_made_only_for_valid_tenants_and_roles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = store(&dir).await;
    for (role, tenants) in [
        (Role::Editor, vec![]),
        (Role::Editor, vec!["a".to_owned(), "b".to_owned()]),
        (Role::Uploader, vec!["Has Spaces".to_owned()]),
        (Role::Admin, vec!["../x".to_owned()]),
    ] {
        assert!(
            matches!(
                make_key(keys.as_ref(), role, tenants.clone(), "").await,
                Err(MakeKeyError::Invalid(_))
            ),
            "{role} {tenants:?}"
        );
    }
    assert!(
        make_key(keys.as_ref(), Role::Admin, vec!["a".into(), "b".into()], "")
            .await
            .is_ok(),
        "an admin may act for several tenants"
    );
    assert!(keys.list_keys().await.expect("list").len() == 1);
}

#[tokio::test]
async fn processes_starting_together_make_one_first_admin_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (store(&dir).await, store(&dir).await);
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let (made_a, made_b) = tokio::join!(
        imgpipe_auth::bootstrap::first_admin_key(a.as_ref(), dir_a.path()),
        imgpipe_auth::bootstrap::first_admin_key(b.as_ref(), dir_b.path()),
    );
    let made: Vec<String> = [made_a.expect("a"), made_b.expect("b")]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(made.len(), 1, "exactly one process made the key");
    let keys = a.list_keys().await.expect("list");
    assert_eq!(keys.len(), 1);
    assert_eq!(
        (keys[0].role, keys[0].tenants.clone()),
        (Role::Admin, vec!["default".to_owned()])
    );
    let auth = Authenticator::new(a.clone());
    assert!(auth.check(Some(&made[0])).await.is_ok());
    let again = imgpipe_auth::bootstrap::first_admin_key(a.as_ref(), dir_a.path())
        .await
        .expect("again");
    assert_eq!(again, None, "a database with keys gets no new one");
}
