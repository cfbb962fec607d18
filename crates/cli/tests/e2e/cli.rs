//! The binary's commands.

use std::os::unix::fs::PermissionsExt;

use pretty_assertions::assert_eq;

use crate::process::{Server, default_data_dir, run};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn version_and_help() {
    let home = tempfile::tempdir().unwrap();
    let (status, out, _) = run(home.path(), &["version"], &[]).await;
    assert!(status.success());
    assert_eq!(out, format!("subgate {}\n", env!("CARGO_PKG_VERSION")));
    let (status, out, _) = run(home.path(), &["serve", "--help"], &[]).await;
    assert!(status.success());
    for flag in ["--host", "--port", "--config", "--data-dir"] {
        assert!(out.contains(flag), "serve --help lacks {flag}");
    }
}

#[tokio::test]
async fn serve_with_nothing_configured_announces_itself_and_keeps_data_private() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path(), &[], &[]).await;
    let data = default_data_dir(home.path());
    assert_eq!(
        server.announce.trim_end(),
        format!(
            "subgate listening on {} · data in {} · no accounts yet: `subgate login claude|codex|copilot`, `subgate import`, or add an API-key provider to `{}` (`subgate config init` writes an example)",
            server.base,
            data.join("subgate.db").display(),
            home.path().join(".config/subgate/config.toml").display()
        )
    );
    assert!(server.base.starts_with("http://127.0.0.1:"));
    let health = subgate_testkit::http_client()
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("subgate.db")), 0o600);

    server.signal("TERM").await;
    let (status, rest, _) = server.wait().await;
    assert!(status.success(), "SIGTERM ends with exit 0, got {status}");
    assert_eq!(rest, "", "serve prints one line and only one");
}

#[tokio::test]
async fn flags_override_environment_which_overrides_the_file() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("custom.toml");
    std::fs::write(
        &file,
        "[server]\nport = 1111\n[storage]\ndata_dir = \"/nonexistent/file-dir\"",
    )
    .unwrap();
    let data = home.path().join("flag-data");
    let server = Server::start(
        home.path(),
        &[
            "--config",
            file.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[("SUBGATE_PORT", "2222")],
    )
    .await;
    // --port 0 (from the harness) beat SUBGATE_PORT, which beat the file;
    // --data-dir beat the file.
    assert!(!server.base.ends_with(":1111") && !server.base.ends_with(":2222"));
    assert!(data.join("subgate.db").exists());
    server.signal("INT").await;
    assert!(server.wait().await.0.success());
}

#[tokio::test]
async fn config_init_check_and_path() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join(".config/subgate/config.toml");

    let (status, out, _) = run(home.path(), &["config", "path"], &[]).await;
    assert!(status.success());
    assert_eq!(out.trim_end(), path.display().to_string());

    let (status, out, _) = run(home.path(), &["config", "init"], &[]).await;
    assert!(status.success());
    assert!(out.starts_with(&format!("wrote a commented config to `{}`", path.display())));
    assert_eq!(mode(&path), 0o600);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        subgate_config::EXAMPLE
    );

    let (status, _, err) = run(home.path(), &["config", "init"], &[]).await;
    assert!(!status.success());
    assert_eq!(
        err,
        format!(
            "error: `{}` already exists; pass `--force` to replace it\n",
            path.display()
        )
    );
    assert!(
        run(home.path(), &["config", "init", "--force"], &[])
            .await
            .0
            .success()
    );

    let (status, out, _) = run(
        home.path(),
        &["config", "check"],
        &[("SUBGATE_PORT", "9999")],
    )
    .await;
    assert!(status.success());
    assert!(
        out.starts_with(&format!("config ok: `{}`", path.display())),
        "{out}"
    );
    assert!(out.contains("listen    http://127.0.0.1:9999"), "{out}");

    std::fs::write(
        &path,
        "[[providers]]\nkind = \"openai-compatible\"\nname = \"local\"\nbase_url = \"http://127.0.0.1:11434/v1\"\nmodels = [\"llama3\"]\n",
    )
    .unwrap();
    let (status, out, _) = run(home.path(), &["config", "check"], &[]).await;
    assert!(status.success());
    assert!(
        out.contains(
            "provider  local (openai-compatible, http://127.0.0.1:11434/v1, no key, models: llama3)"
        ),
        "{out}"
    );

    std::fs::write(
        &path,
        "[[providers]]\nkind = \"openai-compatible\"\nname = \"local\"\nbase_url = \"ftp://x\"\n",
    )
    .unwrap();
    let (status, _, err) = run(home.path(), &["config", "check"], &[]).await;
    assert_eq!(status.code(), Some(1));
    assert_eq!(
        err,
        "error: `providers[0].base_url`: must be an http:// or https:// URL\n"
    );

    std::fs::write(&path, "[log]\nlevel = \"info,=nonsense=\"\n").unwrap();
    let (status, _, err) = run(home.path(), &["config", "check"], &[]).await;
    assert!(!status.success());
    assert!(err.starts_with("error: `log.level`:"), "{err}");
}

#[tokio::test]
async fn serve_refuses_a_bad_config_and_a_taken_port() {
    let home = tempfile::tempdir().unwrap();
    let (status, _, err) = run(home.path(), &["serve"], &[("SUBGATE_HOST", "nowhere")]).await;
    assert_eq!(status.code(), Some(1));
    assert!(
        err.starts_with(
            "error: `server.host`: `nowhere` is not an IP address (set by `SUBGATE_HOST`)"
        ),
        "{err}"
    );

    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (status, _, err) = run(home.path(), &["serve", "--port", &port], &[]).await;
    assert_eq!(status.code(), Some(1));
    assert!(
        err.starts_with(&format!("error: cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
}

/// A home whose default config has one `openai-compatible` provider with
/// two keys and a fixed model list, pointing at a port nothing answers on.
fn home_with_two_accounts() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".config/subgate");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        "[[providers]]\nkind = \"openai-compatible\"\nname = \"local\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodels = [\"m1\", \"m2\"]\napi_keys = [\"sk-a\", \"sk-b\"]\n",
    )
    .unwrap();
    home
}

/// `accounts list --json`, parsed.
async fn accounts_json(home: &std::path::Path) -> Vec<serde_json::Value> {
    let (status, out, err) = run(home, &["accounts", "list", "--json"], &[]).await;
    assert!(status.success(), "{err}");
    serde_json::from_str(&out).unwrap()
}

#[tokio::test]
async fn models_lists_what_the_gateway_serves() {
    let home = home_with_two_accounts();
    let (status, out, err) = run(home.path(), &["models"], &[]).await;
    assert!(status.success(), "{err}");
    assert_eq!(
        out,
        "MODEL  PROVIDER\nm1     local\nm2     local\n2 models\n"
    );

    let (status, out, err) = run(home.path(), &["models", "--json"], &[]).await;
    assert!(status.success(), "{err}");
    let models: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        models,
        serde_json::json!([
            {"id": "m1", "provider": "local"},
            {"id": "m2", "provider": "local"},
        ])
    );

    let (status, out, _) = run(home.path(), &["models", "--help"], &[]).await;
    assert!(status.success());
    assert!(out.contains("--json"), "{out}");
}

#[tokio::test]
async fn accounts_list_and_reset() {
    let home = home_with_two_accounts();
    let accounts = accounts_json(home.path()).await;
    let names: Vec<(&str, &str)> = accounts
        .iter()
        .map(|account| {
            (
                account["name"].as_str().unwrap(),
                account["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(names, [("local#1", "ready"), ("local#2", "ready")]);
    assert_eq!(accounts[0]["provider"], "local");
    assert_eq!(accounts[0]["rests"], serde_json::json!([]));
    let id = accounts[0]["id"].as_str().unwrap();
    assert!(id.starts_with("local-"), "{id}");
    assert!(!id.contains("sk-a"), "the id holds no secret: {id}");

    let (status, out, err) = run(home.path(), &["accounts", "list"], &[]).await;
    assert!(status.success(), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "PROVIDER  ACCOUNT  STATE  EXPIRES  UNTIL  QUOTA  REASON",
            "local     local#1  ready  -        -      -      -",
            "local     local#2  ready  -        -      -      -",
        ]
    );

    let (status, out, err) = run(home.path(), &["accounts", "reset", "local#1"], &[]).await;
    assert!(status.success(), "{err}");
    assert_eq!(out, "local#1 had no rests\n");

    let (status, out, err) = run(home.path(), &["accounts", "reset", "nobody"], &[]).await;
    assert_eq!(status.code(), Some(1));
    assert_eq!(out, "");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("`nobody`"), "{err}");

    let (status, out, _) = run(home.path(), &["accounts", "reset", "--help"], &[]).await;
    assert!(status.success());
    assert!(out.contains("cooldowns"), "{out}");
}

#[tokio::test]
async fn a_stored_rest_shows_until_reset() {
    let home = home_with_two_accounts();
    let id = accounts_json(home.path()).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let database = default_data_dir(home.path()).join("subgate.db");
    let store = subgate_store::Store::open(&subgate_store::StoreLocation::Sqlite(database))
        .await
        .unwrap();
    store
        .put_health(&subgate_store::HealthRow {
            account_id: id.clone(),
            model: String::new(),
            state: "cooling_down".into(),
            until_at: Some(now + 600_000),
            reason: Some("slow down".into()),
            failures: 1,
            updated_at: now,
        })
        .await
        .unwrap();
    store.close().await;

    let accounts = accounts_json(home.path()).await;
    assert_eq!(accounts[0]["state"], "cooling_down");
    assert_eq!(accounts[0]["rests"][0]["reason"], "slow down");
    assert_eq!(accounts[0]["rests"][0]["until"], now + 600_000);
    assert_eq!(accounts[1]["state"], "ready");

    let (status, out, err) = run(home.path(), &["accounts", "list"], &[]).await;
    assert!(status.success(), "{err}");
    let resting = out
        .lines()
        .find(|line| line.contains("local#1"))
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>();
    assert_eq!(
        resting[..4],
        ["local", "local#1", "cooling_down", "-"],
        "{out}"
    );
    // Ten minutes less the moments since the row was written.
    assert_eq!(resting[4], "in", "{out}");
    assert!(
        resting[5] == "10m00s" || resting[5].starts_with("9m5"),
        "{out}"
    );
    assert_eq!(resting[6..], ["-", "slow", "down"], "{out}");

    // Reset by id: named as the list names it.
    let (status, out, err) = run(home.path(), &["accounts", "reset", &id], &[]).await;
    assert!(status.success(), "{err}");
    assert_eq!(
        out,
        "cleared 1 rest of local#1; a running gateway picks this up within 5 s\n"
    );
    let accounts = accounts_json(home.path()).await;
    assert_eq!(accounts[0]["state"], "ready");
    assert_eq!(accounts[0]["rests"], serde_json::json!([]));
    let (_, out, _) = run(home.path(), &["accounts", "reset", "local/local#1"], &[]).await;
    assert_eq!(out, "local#1 had no rests\n");
}
