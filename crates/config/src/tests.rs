//! Loading, layering and the wording of errors.

use std::path::PathBuf;
use std::time::Duration;

use pretty_assertions::assert_eq;
use subgate_core::expose;

use crate::{Config, ConfigError, Database, LogFormat, Override, Sources, load};

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn file(text: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    Fixture { _dir: dir, path }
}

fn load_with(
    text: &str,
    env: &[(&str, &str)],
    overrides: Vec<Override>,
) -> Result<Config, ConfigError> {
    let fixture = file(text);
    let lookup = |name: &str| {
        env.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| (*value).to_owned())
    };
    load(&Sources {
        file: Some(fixture.path.clone()),
        env: &lookup,
        overrides,
    })
}

fn error_text(text: &str) -> String {
    load_with(text, &[], Vec::new()).unwrap_err().to_string()
}

#[test]
fn empty_file_gives_defaults() {
    let config = load_with("", &[], Vec::new()).unwrap();
    assert_eq!(config.server.host.to_string(), "127.0.0.1");
    assert_eq!(config.server.port, 8420);
    assert_eq!(config.server.max_body_bytes, 32 << 20);
    assert_eq!(config.server.shutdown_timeout, Duration::from_secs(30));
    assert_eq!(config.log.format, LogFormat::Pretty);
    assert_eq!(config.log.filter, "info");
    assert!(config.providers.is_empty());
}

#[test]
fn provider_entry_is_read_with_limits_inherited() {
    let config = load_with(
        r#"
        [upstream]
        idle_timeout = "45s"
        [[providers]]
        kind = "openai-compatible"
        name = "local"
        base_url = "http://127.0.0.1:11434/v1/"
        api_keys = ["k1", "k2"]
        models = ["llama3", "llama3"]
        first_byte_timeout = "20s"
        headers = { "X-Title" = "subgate" }
        "#,
        &[],
        Vec::new(),
    )
    .unwrap();
    let provider = &config.providers[0];
    assert_eq!(provider.base_url.as_str(), "http://127.0.0.1:11434/v1");
    assert_eq!(
        provider.api_keys.iter().map(expose).collect::<Vec<_>>(),
        ["k1", "k2"]
    );
    assert_eq!(provider.models.as_deref(), Some(&["llama3".to_owned()][..]));
    assert_eq!(provider.limits.idle_timeout, Duration::from_secs(45));
    assert_eq!(provider.limits.first_byte_timeout, Duration::from_secs(20));
    assert_eq!(provider.limits.connect_timeout, Duration::from_secs(10));
    assert_eq!(provider.headers[0].0, "x-title");
    assert!(provider.stream_usage);
}

#[test]
fn environment_overrides_file_and_flags_override_environment() {
    let text = "[server]\nport = 1000\nhost = \"127.0.0.1\"\n[log]\nformat = \"pretty\"";
    let env = [
        ("SUBGATE_PORT", "2000"),
        ("SUBGATE_LOG_FORMAT", "json"),
        ("SUBGATE_HOST", "::1"),
    ];
    let config = load_with(text, &env, Vec::new()).unwrap();
    assert_eq!(config.server.port, 2000);
    assert_eq!(config.server.host.to_string(), "::1");
    assert_eq!(config.log.format, LogFormat::Json);

    let config = load_with(
        text,
        &env,
        vec![Override::port(3000), Override::host("0.0.0.0")],
    )
    .unwrap();
    assert_eq!(config.server.port, 3000);
    assert_eq!(config.server.host.to_string(), "0.0.0.0");
}

#[test]
fn database_url_picks_the_backend() {
    let config = load_with("", &[("SUBGATE_DATA_DIR", "/tmp/sg-data")], Vec::new()).unwrap();
    assert_eq!(config.storage.data_dir, PathBuf::from("/tmp/sg-data"));
    assert!(
        matches!(&config.storage.database, Database::Sqlite { path } if path == &PathBuf::from("/tmp/sg-data/subgate.db"))
    );
    let config = load_with(
        "[storage]\ndatabase_url = \"postgres://u:secret@127.0.0.1/db\"",
        &[],
        Vec::new(),
    )
    .unwrap();
    assert!(matches!(config.storage.database, Database::Postgres { .. }));
    // The URL's password stays out of Debug output.
    assert!(!format!("{config:?}").contains("secret"));
}

#[test]
fn unknown_keys_are_refused_with_their_path() {
    assert_eq!(
        error_text("[server]\nprot = 1"),
        "`server.prot`: unknown field `prot`, expected one of `host`, `port`, `max_body_size`, `shutdown_timeout`"
    );
    assert!(error_text("colour = true").starts_with("`colour`: unknown field `colour`"));
    let text = "[[providers]]\nkind = \"openai-compatible\"\nname = \"a\"\nbase_url = \"http://x\"\napi_key = \"k\"";
    assert!(
        error_text(text)
            .starts_with("`providers[0].api_key`: unknown field `api_key`, expected one of")
    );
}

#[test]
fn wrong_values_name_the_key_and_the_fix() {
    assert_eq!(
        error_text("[server]\nport = \"eighty\""),
        "`server.port`: invalid type: string \"eighty\", expected u16"
    );
    assert_eq!(
        error_text("[server]\nshutdown_timeout = \"soon\""),
        "`server.shutdown_timeout`: `soon` is not a duration; write it like \"30s\", \"500ms\" or \"5m\""
    );
    assert_eq!(
        error_text("[server]\nhost = \"my-laptop\""),
        "`server.host`: `my-laptop` is not an IP address\nhint: use 127.0.0.1 to serve this machine only, or 0.0.0.0 to serve every interface"
    );
    assert_eq!(
        error_text("[[providers]]\nkind = \"openai-compatible\"\nname = \"a\""),
        "`providers[0].base_url`: an `openai-compatible` provider needs a base URL\nhint: e.g. base_url = \"http://127.0.0.1:11434/v1\" for Ollama"
    );
    assert!(
        error_text("[[providers]]\nkind = \"soap\"\nname = \"a\"").starts_with(
            "`providers[0].kind`: unknown variant `soap`, expected one of `openai-compatible`, `openai`, `anthropic`, `gemini`"
        )
    );
    assert_eq!(
        error_text(
            "[[providers]]\nkind = \"openai-compatible\"\nname = \"a\"\nbase_url = \"http://user:pw@x/v1\""
        ),
        "`providers[0].base_url`: must not carry credentials\nhint: put the key in `api_keys` or `api_key_env`; URLs end up in logs"
    );
    let twice =
        "[[providers]]\nkind = \"openai-compatible\"\nname = \"a\"\nbase_url = \"http://x\"\n"
            .repeat(2);
    assert!(
        error_text(&twice)
            .starts_with("`providers[1].name`: the name `a` is used by an earlier provider")
    );
    assert!(
        error_text(
            "[[providers]]\nkind = \"openai-compatible\"\nname = \"a/b\"\nbase_url = \"http://x\""
        )
        .starts_with("`providers[0].name`: `a/b` is not a usable name")
    );
}

#[test]
fn errors_say_which_override_set_the_value() {
    let error = load_with("", &[("SUBGATE_HOST", "nowhere")], Vec::new()).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("`server.host`: `nowhere` is not an IP address (set by `SUBGATE_HOST`)")
    );
    let error = load_with("", &[("SUBGATE_PORT", "x")], Vec::new()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "environment variable `SUBGATE_PORT`: `x` is not a whole number"
    );
    let error = load_with("", &[("SUBGATE_SHUTDOWN_TIMEOUT", "later")], Vec::new()).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("(set by `SUBGATE_SHUTDOWN_TIMEOUT`)"),
        "{error}"
    );
}

#[test]
fn api_key_env_reads_the_named_variables() {
    let text = "[[providers]]\nkind = \"openai-compatible\"\nname = \"a\"\nbase_url = \"http://x\"\napi_key_env = \"MY_KEY\"";
    let config = load_with(text, &[("MY_KEY", " sk-env ")], Vec::new()).unwrap();
    assert_eq!(expose(&config.providers[0].api_keys[0]), "sk-env");
    let error = load_with(text, &[], Vec::new()).unwrap_err().to_string();
    assert_eq!(
        error,
        "`providers[0].api_key_env[0]`: the environment variable `MY_KEY` is not set or is empty\nhint: export MY_KEY=… before starting subgate, or list the key in `api_keys`"
    );
}

#[test]
fn kinds_with_a_known_home_need_no_base_url() {
    let config = load_with(
        "[[providers]]\nkind = \"anthropic\"\nname = \"a\"\n[[providers]]\nkind = \"gemini\"\nname = \"g\"\n[[providers]]\nkind = \"openai\"\nname = \"o\"\napis = [\"responses\"]\nalways_stream = true\n[[providers]]\nkind = \"openai\"\nname = \"o2\"",
        &[],
        Vec::new(),
    )
    .unwrap();
    let urls: Vec<&str> = config.providers[..3]
        .iter()
        .map(|provider| provider.base_url.as_str())
        .collect();
    assert_eq!(
        urls,
        [
            "https://api.anthropic.com/",
            "https://generativelanguage.googleapis.com/",
            "https://api.openai.com/v1"
        ]
    );
    assert_eq!(config.providers[2].apis, [crate::OpenAiApi::Responses]);
    assert_eq!(
        config.providers[3].apis,
        [crate::OpenAiApi::Chat, crate::OpenAiApi::Responses]
    );
    assert!(config.providers[0].apis.is_empty());
    assert!(config.providers[2].always_stream);
    assert_eq!(
        error_text("[[providers]]\nkind = \"anthropic\"\nname = \"a\"\napis = [\"chat\"]"),
        "`providers[0].apis`: a `anthropic` provider speaks its own API only\nhint: `apis` lists the OpenAI APIs (\"chat\", \"responses\") an OpenAI-style upstream offers"
    );
}

#[test]
fn syntax_errors_point_at_the_line() {
    let error = error_text("[server\nport = 1");
    assert!(error.starts_with("the config file `"), "{error}");
    assert!(error.contains("line 1"), "{error}");
}

#[test]
fn a_missing_explicit_file_is_an_error() {
    let error = load(&Sources {
        file: Some(PathBuf::from("/nonexistent/subgate.toml")),
        env: &|_| None,
        overrides: Vec::new(),
    })
    .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("cannot read the config file `/nonexistent/subgate.toml`")
    );
}
