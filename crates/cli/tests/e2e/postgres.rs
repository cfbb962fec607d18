//! The gateway on PostgreSQL: usage lands there, and readiness follows the
//! database. Runs when `SUBGATE_TEST_POSTGRES_URL` is set (CI sets it).

use std::time::Duration;

use pretty_assertions::assert_eq;
use subgate_core::SecretString;
use subgate_engine::{BudgetPeriod, KeyLimits, NewKey};
use subgate_store::{Store, StoreLocation};
use subgate_testkit::mock::MockUpstream;
use subgate_testkit::{TcpRelay, TestGateway, http_client};

use crate::support::{chat_body, post_json};

#[tokio::test]
async fn the_gateway_records_usage_in_postgres_and_readiness_follows_it() {
    let Some((url, schema, direct)) = fresh_schema().await else {
        return;
    };

    // The gateway reaches PostgreSQL through a relay the test can cut.
    let mut parsed = reqwest::Url::parse(&url).unwrap();
    let target = (
        parsed.host_str().unwrap().to_owned(),
        parsed.port().unwrap_or(5432),
    );
    let target = tokio::net::lookup_host(target)
        .await
        .unwrap()
        .next()
        .unwrap();
    let relay = TcpRelay::start(target).await;
    parsed.set_host(Some("127.0.0.1")).unwrap();
    parsed.set_port(Some(relay.address().port())).unwrap();
    parsed
        .query_pairs_mut()
        .append_pair("options[search_path]", &schema);

    let mock = MockUpstream::openai_chat().await;
    let mut gateway = TestGateway::start(&format!(
        "[storage]\ndatabase_url = \"{parsed}\"\n[[providers]]\nkind = \"openai-compatible\"\nname = \"mock\"\nbase_url = \"{}\"\nmodels = [\"m\"]\n",
        mock.url()
    ))
    .await;
    let (status, headers, _) =
        post_json(&gateway.url("/v1/chat/completions"), &chat_body("m", false)).await;
    assert_eq!(status, 200);
    let ready = http_client()
        .get(gateway.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    let mut rows = Vec::new();
    for _ in 0..100 {
        rows = direct.usage_since(0, 10).await.unwrap();
        if !rows.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id, headers["x-request-id"].to_str().unwrap());

    relay.cut().await;
    let ready = http_client()
        .get(gateway.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");

    gateway.stop().await;
    drop_schema(&url, &schema).await;
    direct.close().await;
}

/// Two replicas on one PostgreSQL schema: a key made on one works on the
/// other, and what it spends on one counts against its budget on both.
#[tokio::test]
async fn replicas_share_keys_and_budgets() {
    let Some((url, schema, direct)) = fresh_schema().await else {
        return;
    };
    let mut database = reqwest::Url::parse(&url).unwrap();
    database
        .query_pairs_mut()
        .append_pair("options[search_path]", &schema);
    let mock = MockUpstream::openai_chat().await;
    // $1000 per million tokens: each request costs about a cent.
    let prices = tempfile::tempdir().unwrap();
    let price_file = prices.path().join("prices.json");
    std::fs::write(
        &price_file,
        r#"{"mock": {"models": {"m": {"cost": {"input": 1000, "output": 1000}}}}}"#,
    )
    .unwrap();
    let config = format!(
        "[pricing]\nfile = \"{}\"\n[storage]\ndatabase_url = \"{database}\"\n[[providers]]\nkind = \"openai-compatible\"\nname = \"mock\"\nbase_url = \"{}\"\nmodels = [\"m\"]\n",
        price_file.display(),
        mock.url()
    );
    let mut a = TestGateway::start(&config).await;
    let mut b = TestGateway::start(&config).await;
    let key = a
        .engine()
        .create_key(NewKey {
            name: "shared".to_owned(),
            limits: KeyLimits {
                budget_usd: Some(0.05),
                budget_period: Some(BudgetPeriod::Day),
                ..KeyLimits::default()
            },
            ..NewKey::default()
        })
        .await
        .unwrap();
    let auth = format!("Bearer {}", key.secret);
    let chat = |gateway: &TestGateway| {
        http_client()
            .post(gateway.url("/v1/chat/completions"))
            .header("authorization", &auth)
            .json(&chat_body("m", false))
            .send()
    };
    // B learns of the key at its next sync, and counts the budget.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while chat(&b).await.unwrap().status() == 401 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "B never saw the key"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A spends the rest.
    let mut served = 0;
    while chat(&a).await.unwrap().status() == 200 {
        served += 1;
        assert!(served < 50, "the budget never ran out on A");
    }
    // Once A's records are written, B's next sync counts them.
    let requests = served + 2;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while direct.usage_since(0, 100).await.unwrap().len() < requests {
        assert!(
            tokio::time::Instant::now() < deadline,
            "A's records never landed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let refused = chat(&b).await.unwrap();
    assert_eq!(refused.status(), 429, "B still serves a spent budget");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("daily budget"),
        "{body}"
    );
    a.stop().await;
    b.stop().await;
    drop_schema(&url, &schema).await;
    direct.close().await;
}

/// The test database's URL, a schema of its own and a store on it (which
/// created the tables); `None`, with a note, when no database is set.
#[expect(clippy::print_stderr, reason = "the note says why a test did nothing")]
async fn fresh_schema() -> Option<(String, String, Store)> {
    let Ok(url) = std::env::var("SUBGATE_TEST_POSTGRES_URL") else {
        eprintln!("note: SUBGATE_TEST_POSTGRES_URL is not set; this PostgreSQL test is skipped");
        return None;
    };
    let schema = format!("sg_e2e_{}", uuid::Uuid::now_v7().simple());
    let store = Store::open(&StoreLocation::Postgres {
        url: SecretString::from(url.clone()),
        schema: Some(schema.clone()),
    })
    .await
    .unwrap();
    Some((url, schema, store))
}

async fn drop_schema(url: &str, schema: &str) {
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
    // The name is ours (letters, digits and `_`), so it needs no quoting.
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();
}
