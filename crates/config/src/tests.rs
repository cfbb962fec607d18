//! Loading, layering and the wording of errors.

use std::path::PathBuf;
use std::time::Duration;

use pretty_assertions::assert_eq;
use subgate_core::expose;

use crate::{Config, ConfigError, Database, LogFormat, Override, Sources, Url, load};

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
    assert_eq!(config.server.read_timeout, Duration::from_mins(1));
    assert_eq!(config.log.format, LogFormat::Pretty);
    assert_eq!(config.log.filter, "info");
    // Only the subscriptions, ready for logins, with no accounts yet.
    let names: Vec<&str> = config.providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["claude", "codex", "copilot", "gemini-cli", "kiro"]);
    assert!(config.providers.iter().all(|p| p.accounts.is_empty()));
}

#[test]
fn subscriptions_take_logins_not_keys_and_keep_their_place() {
    let config = load_with(
        "[[providers]]\nkind = \"claude\"\nauth_url = \"http://127.0.0.1:9/\"\n\n[[providers]]\nkind = \"anthropic\"\napi_keys = [\"sk-1\"]\n",
        &[],
        Vec::new(),
    )
    .unwrap();
    let names: Vec<&str> = config.providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "claude",
            "anthropic",
            "codex",
            "copilot",
            "gemini-cli",
            "kiro"
        ]
    );
    assert_eq!(
        config.providers[0].auth_url.as_ref().map(Url::as_str),
        Some("http://127.0.0.1:9/")
    );
    assert_eq!(
        error_text("[[providers]]\nkind = \"codex\"\napi_keys = [\"sk-1\"]\n"),
        "`providers[0].api_keys`: `codex` accounts are logins, not API keys\nhint: run `subgate login codex` or `subgate import`; for an API key use kind = \"openai\""
    );
    assert_eq!(
        error_text("[[providers]]\nkind = \"openai\"\nauth_url = \"http://x\"\n"),
        "`providers[0].auth_url`: a `openai` provider has no login\nhint: `auth_url` points a subscription (claude, codex, copilot) at another login server"
    );
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
        provider
            .accounts
            .iter()
            .map(|account| (
                account.name.as_str(),
                account.key.as_ref().map(expose),
                account.priority
            ))
            .collect::<Vec<_>>(),
        [("local#1", Some("k1"), 0), ("local#2", Some("k2"), 1)]
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
        "`server.prot`: unknown field `prot`, expected one of `host`, `port`, `max_body_size`, `shutdown_timeout`, `read_timeout`, `require_keys`"
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
        "`providers[0].base_url`: an `openai-compatible` provider needs a base URL or a preset\nhint: e.g. preset = \"ollama\", or base_url = \"http://127.0.0.1:11434/v1\""
    );
    assert!(
        error_text("[[providers]]\nkind = \"soap\"\nname = \"a\"").starts_with(
            "`providers[0].kind`: unknown variant `soap`, expected one of `openai-compatible`, `openai`, `anthropic`, `gemini`, `kimi`"
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
fn pricing_sources_are_read_and_checked() {
    let config = load_with(
        "[pricing]\nurl = \"https://prices.example/api.json\"\nfile = \"/etc/prices.json\"\nrefresh = \"6h\"",
        &[],
        vec![],
    )
    .unwrap();
    assert_eq!(
        config.pricing.url.as_ref().map(Url::as_str),
        Some("https://prices.example/api.json")
    );
    assert_eq!(config.pricing.file, Some(PathBuf::from("/etc/prices.json")));
    assert_eq!(config.pricing.refresh, Duration::from_hours(6));
    let defaults = load_with("", &[], vec![]).unwrap().pricing;
    assert_eq!((defaults.url, defaults.file), (None, None));
    assert_eq!(defaults.refresh, crate::DEFAULT_PRICING_REFRESH);
    assert_eq!(
        error_text("[pricing]\nurl = \"ftp://x/api.json\""),
        "`pricing.url`: must be an http:// or https:// URL"
    );
    assert_eq!(
        error_text("[pricing]\nrefresh = \"10s\""),
        "`pricing.refresh`: must be at least a minute"
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
    assert_eq!(
        config.providers[0].accounts[0].key.as_ref().map(expose),
        Some("sk-env")
    );
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

#[test]
fn routing_defaults_and_overrides() {
    let config = load_with("", &[], Vec::new()).unwrap();
    assert_eq!(config.routing.strategy, crate::Strategy::RoundRobin);
    assert!(config.routing.session_affinity);
    assert_eq!(config.routing.max_attempts, 4);
    assert_eq!(config.routing.affinity_ttl, Duration::from_hours(1));
    let config = load_with(
        "[routing]\nstrategy = \"quota-aware\"\nmax_attempts = 2\nbackoff_base = \"2s\"\nbackoff_cap = \"1m\"\n[[providers]]\nkind = \"openai\"\nname = \"o\"\napi_keys = [\"k\"]\n[[providers]]\nkind = \"anthropic\"\nname = \"a\"\nstrategy = \"fill-first\"\nmax_concurrency = 2\nmin_interval = \"250ms\"",
        &[],
        Vec::new(),
    )
    .unwrap();
    assert_eq!(config.routing.max_attempts, 2);
    assert_eq!(config.routing.backoff_cap, Duration::from_mins(1));
    assert_eq!(
        config.providers[0].pool.strategy,
        crate::Strategy::QuotaAware
    );
    assert_eq!(
        config.providers[1].pool.strategy,
        crate::Strategy::FillFirst
    );
    assert_eq!(config.providers[1].pool.max_concurrency, Some(2));
    assert_eq!(
        config.providers[1].pool.min_interval,
        Some(Duration::from_millis(250))
    );
    assert_eq!(
        error_text("[routing]\nmax_attempts = 0"),
        "`routing.max_attempts`: must be at least 1\nhint: 1 turns failover off; the default is 4"
    );
    assert_eq!(
        error_text("[routing]\nbackoff_base = \"5m\"\nbackoff_cap = \"1m\""),
        "`routing.backoff_cap`: must not be shorter than `routing.backoff_base`"
    );
    assert!(error_text("[routing]\nstrategy = \"random\"").starts_with(
        "`routing.strategy`: unknown variant `random`, expected one of `priority`, `round-robin`, `least-used`, `fill-first`, `quota-aware`"
    ));
}

#[test]
fn aliases_name_configured_providers() {
    let providers = "[[providers]]\nkind = \"anthropic\"\nname = \"claude\"\n[[providers]]\nkind = \"openai\"\nname = \"oa\"\n";
    let config = load_with(
        &format!("[aliases]\nsmart = [\"claude/claude-sonnet-4-5\", \"oa/gpt-5\"]\nquick = \"oa/gpt-5-mini\"\n{providers}"),
        &[],
        Vec::new(),
    )
    .unwrap();
    assert_eq!(
        config.aliases,
        [
            crate::Alias {
                name: "quick".to_owned(),
                targets: vec![("oa".to_owned(), "gpt-5-mini".to_owned())],
            },
            crate::Alias {
                name: "smart".to_owned(),
                targets: vec![
                    ("claude".to_owned(), "claude-sonnet-4-5".to_owned()),
                    ("oa".to_owned(), "gpt-5".to_owned())
                ],
            },
        ]
    );
    assert_eq!(
        error_text(&format!("[aliases]\nsmart = [\"nobody/x\"]\n{providers}")),
        "`aliases.smart[0]`: no provider is named `nobody`\nhint: configured providers: claude, oa, codex, copilot, gemini-cli, kiro"
    );
    assert!(
        error_text(&format!("[aliases]\nsmart = \"gpt-5\"\n{providers}"))
            .starts_with("`aliases.smart[0]`: `gpt-5` is not a `provider/model` name")
    );
}

#[test]
fn named_accounts_presets_and_kimi() {
    let config = load_with(
        r#"
        [[providers]]
        kind = "openai-compatible"
        name = "router"
        preset = "openrouter"
        api_keys = ["sk-or-1"]
        accounts = [
            { name = "work", api_key_env = "WORK_KEY", priority = 0 },
            { name = "spare", api_key = "sk-or-3" },
        ]
        [[providers]]
        kind = "openai-compatible"
        name = "local"
        preset = "ollama"
        [[providers]]
        kind = "kimi"
        name = "kimi"
        api_keys = ["sk-kimi-1"]
        "#,
        &[("WORK_KEY", "sk-or-2")],
        Vec::new(),
    )
    .unwrap();
    let router = &config.providers[0];
    assert_eq!(router.base_url.as_str(), "https://openrouter.ai/api/v1");
    let accounts: Vec<_> = router
        .accounts
        .iter()
        .map(|account| {
            (
                account.name.as_str(),
                account.key.as_ref().map(expose),
                account.priority,
            )
        })
        .collect();
    assert_eq!(
        accounts,
        [
            ("router#1", Some("sk-or-1"), 0),
            ("work", Some("sk-or-2"), 0),
            ("spare", Some("sk-or-3"), 1)
        ]
    );
    let local = &config.providers[1];
    assert_eq!(local.base_url.as_str(), "http://127.0.0.1:11434/v1");
    assert_eq!(local.accounts.len(), 1);
    assert!(local.accounts[0].key.is_none());
    assert_eq!(
        config.providers[2].base_url.as_str(),
        "https://api.kimi.com/coding/v1"
    );
    assert_eq!(
        error_text("[[providers]]\nkind = \"openai-compatible\"\nname = \"g\"\npreset = \"groq\""),
        "`providers[0].api_keys`: the `groq` preset needs an API key\nhint: list it in `api_keys`, or name an environment variable in `api_key_env`"
    );
    assert!(
        error_text("[[providers]]\nkind = \"anthropic\"\nname = \"a\"\npreset = \"groq\"")
            .starts_with("`providers[0].preset`: a `anthropic` provider has no presets")
    );
    assert_eq!(
        error_text(
            "[[providers]]\nkind = \"openai\"\nname = \"o\"\napi_keys = [\"k\"]\naccounts = [{ name = \"x\", api_key = \"k\" }]"
        ),
        "`providers[0].accounts[0].api_key`: repeats another account's key; each key is one account"
    );
}

#[test]
fn kiro_takes_thinking_tags_and_a_first_token_timeout() {
    let load_str = |text: &str| load_with(text, &[], Vec::new());
    let config = load_str("[[providers]]\nkind = \"kiro\"\nthinking_tags = false\n").unwrap();
    let kiro = &config.providers[0];
    assert!(!kiro.thinking_tags);
    assert_eq!(
        kiro.limits.first_token_timeout,
        Some(Duration::from_secs(30))
    );
    let set = load_str("[[providers]]\nkind = \"kiro\"\nfirst_token_timeout = \"5s\"\n").unwrap();
    assert_eq!(
        set.providers[0].limits.first_token_timeout,
        Some(Duration::from_secs(5))
    );
    let implicit = load_str("").unwrap();
    let kiro = implicit
        .providers
        .iter()
        .find(|p| p.name == "kiro")
        .unwrap();
    assert!(kiro.thinking_tags);
    assert!(
        implicit
            .providers
            .iter()
            .filter(|p| p.name != "kiro")
            .all(|p| p.limits.first_token_timeout.is_none())
    );
    let error = error_text("[[providers]]\nkind = \"claude\"\nthinking_tags = true\n");
    assert!(error.contains("thinking_tags"), "{error}");
}
