//! The store contract: every test runs on SQLite, and on PostgreSQL when
//! `SUBGATE_TEST_POSTGRES_URL` is set (CI sets it). Each PostgreSQL test gets
//! its own schema, so the tests run in parallel.

#![expect(
    clippy::unwrap_used,
    clippy::print_stderr,
    reason = "a test harness: setup failures should fail the test loudly"
)]

use std::os::unix::fs::PermissionsExt;

use pretty_assertions::assert_eq;
use subgate_core::{SecretString, expose};
use subgate_store::{
    HealthRow, NewAccount, NewClientKey, OAuthFlowRow, Store, StoreLocation, UsageGroup, UsageRow,
};

struct Harness {
    store: Store,
    _dir: tempfile::TempDir,
    cleanup: Option<(String, String)>,
}

impl Harness {
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreLocation::Sqlite(dir.path().join("data/subgate.db")))
            .await
            .unwrap();
        Self {
            store,
            _dir: dir,
            cleanup: None,
        }
    }

    async fn postgres() -> Option<Self> {
        let Ok(url) = std::env::var("SUBGATE_TEST_POSTGRES_URL") else {
            eprintln!(
                "note: SUBGATE_TEST_POSTGRES_URL is not set; the PostgreSQL run of this test is skipped"
            );
            return None;
        };
        let schema = format!("sg_test_{}", uuid::Uuid::now_v7().simple());
        let store = Store::open(&StoreLocation::Postgres {
            url: SecretString::from(url.clone()),
            schema: Some(schema.clone()),
        })
        .await
        .unwrap();
        Some(Self {
            store,
            _dir: tempfile::tempdir().unwrap(),
            cleanup: Some((url, schema)),
        })
    }

    async fn finish(self) {
        self.store.close().await;
        if let Some((url, schema)) = self.cleanup {
            use sqlx::Connection;
            let mut connection = sqlx::PgConnection::connect(&url).await.unwrap();
            // The name is ours (letters, digits and `_`), so it needs no quoting.
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&mut connection)
                .await
                .unwrap();
            connection.close().await.unwrap();
        }
    }
}

/// Stamps each contract test out once per backend.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let harness = super::Harness::sqlite().await;
                    super::$name(&harness.store).await;
                    harness.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(harness) = super::Harness::postgres().await else { return };
                    super::$name(&harness.store).await;
                    harness.finish().await;
                }
            )*
        }
    };
}

contract!(
    answers_ping_and_migrates_twice,
    accounts_upsert_by_provider_and_name,
    accounts_update_enable_and_delete,
    client_keys_are_found_by_hash_and_revoked_once,
    usage_batches_are_stored_once_in_order,
    usage_adds_up_per_group_and_model,
    oauth_flows_are_taken_once_and_expire,
    health_states_expire_and_clear,
    settings_are_replaced,
);

async fn answers_ping_and_migrates_twice(store: &Store) {
    store.ping().await.unwrap();
    // Running the migrations on an up-to-date schema is a no-op.
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
}

fn new_account<'a>(name: &'a str, credentials: &'a SecretString, now: i64) -> NewAccount<'a> {
    NewAccount {
        id: name,
        provider: "claude",
        name,
        auth_kind: "oauth",
        credentials,
        now,
    }
}

async fn accounts_upsert_by_provider_and_name(store: &Store) {
    let first = SecretString::from(r#"{"access":"a1"}"#);
    let row = store
        .upsert_account(&new_account("work", &first, 1_000))
        .await
        .unwrap();
    assert_eq!(
        (row.id.as_str(), row.enabled, row.priority, row.created_at),
        ("work", true, 0, 1_000)
    );

    // A second login of the same account updates it and keeps its id.
    let second = SecretString::from(r#"{"access":"a2"}"#);
    let again = NewAccount {
        id: "another-id",
        ..new_account("work", &second, 2_000)
    };
    let row = store.upsert_account(&again).await.unwrap();
    assert_eq!(
        (row.id.as_str(), row.created_at, row.updated_at),
        ("work", 1_000, 2_000)
    );
    assert_eq!(expose(&row.credentials), r#"{"access":"a2"}"#);

    store
        .upsert_account(&new_account("home", &first, 3_000))
        .await
        .unwrap();
    let names: Vec<String> = store
        .accounts()
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.name)
        .collect();
    assert_eq!(names, ["home", "work"]);
}

async fn accounts_update_enable_and_delete(store: &Store) {
    let credentials = SecretString::from("{}");
    store
        .upsert_account(&new_account("a", &credentials, 1))
        .await
        .unwrap();
    assert!(
        store
            .update_credentials("a", &SecretString::from(r#"{"r":2}"#), 5)
            .await
            .unwrap()
    );
    assert!(
        !store
            .update_credentials("missing", &credentials, 5)
            .await
            .unwrap()
    );
    assert!(store.set_account_enabled("a", false, 6).await.unwrap());
    let row = store.account("a").await.unwrap().unwrap();
    assert_eq!(
        (expose(&row.credentials), row.enabled, row.updated_at),
        (r#"{"r":2}"#, false, 6)
    );
    assert!(store.set_account_priority("a", 3, 7).await.unwrap());
    assert!(!store.set_account_priority("missing", 3, 7).await.unwrap());
    let row = store.account("a").await.unwrap().unwrap();
    assert_eq!((row.priority, row.updated_at), (3, 7));

    store
        .put_health(&health("a", "", Some(100), 1))
        .await
        .unwrap();
    assert!(store.delete_account("a").await.unwrap());
    assert!(!store.delete_account("a").await.unwrap());
    assert!(store.account("a").await.unwrap().is_none());
    assert!(store.health(0).await.unwrap().is_empty());
}

async fn client_keys_are_found_by_hash_and_revoked_once(store: &Store) {
    let key = NewClientKey {
        id: "k1",
        name: "alice",
        prefix: "sg-abcd",
        hash: "h1",
        scopes: r#"{"models":["claude-*"]}"#,
        limits: "{}",
        expires_at: Some(9_000),
        now: 1_000,
    };
    store.insert_client_key(&key).await.unwrap();
    store
        .insert_client_key(&NewClientKey {
            id: "k2",
            name: "bob",
            hash: "h2",
            expires_at: None,
            now: 2_000,
            ..key.clone()
        })
        .await
        .unwrap();
    // The hash is unique.
    assert!(
        store
            .insert_client_key(&NewClientKey {
                id: "k3",
                ..key.clone()
            })
            .await
            .is_err()
    );

    let found = store.client_key_by_hash("h1").await.unwrap().unwrap();
    assert_eq!(
        (found.id.as_str(), found.expires_at, found.revoked_at),
        ("k1", Some(9_000), None)
    );
    assert!(store.client_key_by_hash("nope").await.unwrap().is_none());

    assert!(store.revoke_client_key("k1", 3_000).await.unwrap());
    assert!(!store.revoke_client_key("k1", 4_000).await.unwrap());
    assert_eq!(
        store
            .client_key_by_hash("h1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(3_000)
    );

    store
        .touch_client_keys(&[("k2", 50), ("k2", 40)])
        .await
        .unwrap();
    let names: Vec<(String, Option<i64>)> = store
        .client_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|row| (row.name, row.last_used_at))
        .collect();
    assert_eq!(
        names,
        [("alice".to_owned(), None), ("bob".to_owned(), Some(50))]
    );
}

fn usage(id: usize, at: i64) -> UsageRow {
    UsageRow {
        id: format!("req-{id:04}"),
        at,
        provider: Some("local".to_owned()),
        account_id: Some("local-abc".to_owned()),
        model: "llama3".to_owned(),
        client_dialect: "openai_chat".to_owned(),
        stream: id.is_multiple_of(2),
        usage_reported: true,
        input_tokens: 10,
        output_tokens: i64::try_from(id).unwrap(),
        latency_ms: 5,
        first_token_ms: Some(2),
        status: 200,
        ..UsageRow::default()
    }
}

async fn usage_batches_are_stored_once_in_order(store: &Store) {
    // More rows than one INSERT statement carries.
    let batch: Vec<UsageRow> = (0..1_000)
        .map(|id| usage(id, 10_000 - i64::try_from(id).unwrap()))
        .collect();
    store.insert_usage(&batch).await.unwrap();
    // A retried batch does not double anything.
    store.insert_usage(&batch[..10]).await.unwrap();
    store.insert_usage(&[]).await.unwrap();

    let all = store.usage_since(0, 10_000).await.unwrap();
    assert_eq!(all.len(), 1_000);
    assert_eq!(all[0], usage(999, 9_001));
    let recent = store.usage_since(9_998, 100).await.unwrap();
    assert_eq!(
        recent.iter().map(|row| row.id.as_str()).collect::<Vec<_>>(),
        ["req-0002", "req-0001", "req-0000"]
    );

    let failed = UsageRow {
        error_class: Some("upstream_timeout".to_owned()),
        status: 504,
        usage_reported: false,
        first_token_ms: None,
        ..usage(5_000, 20_000)
    };
    store
        .insert_usage(std::slice::from_ref(&failed))
        .await
        .unwrap();
    assert_eq!(store.usage_since(20_000, 1).await.unwrap(), [failed]);
}

async fn usage_adds_up_per_group_and_model(store: &Store) {
    let day = 86_400_000;
    let row = |id: usize, at: i64, key: Option<&str>, model: &str, status: i64| UsageRow {
        client_key_id: key.map(str::to_owned),
        upstream_model: Some(format!("{model}-up")),
        model: model.to_owned(),
        input_tokens: 100,
        output_tokens: 10,
        cache_read_tokens: 5,
        status,
        ..usage(id, at)
    };
    let rows = [
        row(1, day + 1, Some("k1"), "a", 200),
        row(2, day + 2, Some("k1"), "a", 200),
        row(3, day + 3, Some("k1"), "b", 500),
        row(4, 2 * day + 1, None, "a", 200),
        row(5, 10, Some("k1"), "a", 200),
    ];
    store.insert_usage(&rows).await.unwrap();
    let by_key = store.usage_totals(day, UsageGroup::Key).await.unwrap();
    let summary: Vec<(&str, &str, i64, i64, i64, i64)> = by_key
        .iter()
        .map(|t| {
            (
                t.grp.as_str(),
                t.model.as_str(),
                t.requests,
                t.failures,
                t.input_tokens,
                t.cache_read_tokens,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("", "a-up", 1, 0, 100, 5),
            ("k1", "a-up", 2, 0, 200, 10),
            ("k1", "b-up", 1, 1, 100, 5),
        ]
    );
    let by_day = store.usage_totals(0, UsageGroup::Day).await.unwrap();
    let days: Vec<(&str, i64)> = by_day
        .iter()
        .map(|t| (t.grp.as_str(), t.requests))
        .collect();
    assert_eq!(days, [("0", 1), ("1", 2), ("1", 1), ("2", 1)]);
    let by_model = store.usage_totals(day, UsageGroup::Model).await.unwrap();
    assert_eq!(by_model.len(), 2);
    assert_eq!(by_model[0].output_tokens, 30);
    let k1: Vec<(String, i64)> = store
        .key_usage_totals("k1", day)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.model, t.requests))
        .collect();
    assert_eq!(k1, [("a-up".to_owned(), 2), ("b-up".to_owned(), 1)]);
}

async fn oauth_flows_are_taken_once_and_expire(store: &Store) {
    let flow = |state: &str, expires_at| OAuthFlowRow {
        state: state.to_owned(),
        provider: "claude".to_owned(),
        data: SecretString::from(r#"{"verifier":"v"}"#),
        created_at: 1_000,
        expires_at,
    };
    store.put_oauth_flow(&flow("s1", 5_000)).await.unwrap();
    store.put_oauth_flow(&flow("s2", 2_000)).await.unwrap();
    let taken = store.take_oauth_flow("s1", 3_000).await.unwrap().unwrap();
    assert_eq!(expose(&taken.data), r#"{"verifier":"v"}"#);
    assert!(store.take_oauth_flow("s1", 3_000).await.unwrap().is_none());
    // An expired flow cannot be finished.
    assert!(store.take_oauth_flow("s2", 3_000).await.unwrap().is_none());

    store.put_oauth_flow(&flow("s3", 2_000)).await.unwrap();
    store.put_oauth_flow(&flow("s4", 9_000)).await.unwrap();
    assert_eq!(store.purge_oauth_flows(3_000).await.unwrap(), 1);
    assert!(store.take_oauth_flow("s4", 3_000).await.unwrap().is_some());
}

fn health(account: &str, model: &str, until: Option<i64>, failures: i64) -> HealthRow {
    HealthRow {
        account_id: account.to_owned(),
        model: model.to_owned(),
        state: "cooling_down".to_owned(),
        until_at: until,
        reason: Some("429 from upstream".to_owned()),
        failures,
        updated_at: 1_000,
    }
}

async fn health_states_expire_and_clear(store: &Store) {
    store
        .put_health(&health("a", "", Some(5_000), 1))
        .await
        .unwrap();
    store
        .put_health(&health("a", "gpt-5", Some(2_000), 1))
        .await
        .unwrap();
    store
        .put_health(&HealthRow {
            state: "credential_invalid".to_owned(),
            ..health("b", "", None, 3)
        })
        .await
        .unwrap();
    // A newer state for the same account and model replaces the old one.
    store
        .put_health(&health("a", "", Some(6_000), 2))
        .await
        .unwrap();

    let now_in_force = store.health(3_000).await.unwrap();
    assert_eq!(
        now_in_force,
        [
            health("a", "", Some(6_000), 2),
            HealthRow {
                state: "credential_invalid".to_owned(),
                ..health("b", "", None, 3)
            }
        ]
    );

    assert_eq!(store.purge_health(3_000).await.unwrap(), 1);
    assert_eq!(store.clear_health("a").await.unwrap(), 1);
    assert_eq!(store.health(0).await.unwrap().len(), 1);
}

async fn settings_are_replaced(store: &Store) {
    assert_eq!(store.setting("instance_id").await.unwrap(), None);
    store.set_setting("instance_id", "one", 1).await.unwrap();
    store.set_setting("instance_id", "two", 2).await.unwrap();
    assert_eq!(
        store.setting("instance_id").await.unwrap().as_deref(),
        Some("two")
    );
}

#[tokio::test]
async fn sqlite_files_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested/data");
    let store = Store::open(&StoreLocation::Sqlite(data.join("subgate.db")))
        .await
        .unwrap();
    store.set_setting("k", "v", 1).await.unwrap();
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("subgate.db")), 0o600);
    assert_eq!(mode(&data.join("subgate.db-wal")), 0o600);
    store.close().await;

    // A directory that was too open is tightened on the next start.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let store = Store::open(&StoreLocation::Sqlite(data.join("subgate.db")))
        .await
        .unwrap();
    assert_eq!(mode(&data), 0o700);
    store.close().await;
}

#[tokio::test]
async fn sqlite_state_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let location = StoreLocation::Sqlite(dir.path().join("subgate.db"));
    let store = Store::open(&location).await.unwrap();
    store
        .put_health(&health("a", "", Some(i64::MAX), 1))
        .await
        .unwrap();
    store.close().await;
    let store = Store::open(&location).await.unwrap();
    assert_eq!(store.health(0).await.unwrap().len(), 1);
    store.close().await;
}
