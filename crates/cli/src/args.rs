//! Command-line arguments, and nothing else.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use subgate_config::env_vars;

/// One gateway for your AI subscriptions and API keys.
///
/// Point Claude Code, Codex CLI, OpenCode, Cursor or any OpenAI-compatible
/// SDK at subgate and it answers from whichever account can.
#[derive(Debug, Parser)]
#[command(
    name = "subgate",
    version,
    propagate_version = true,
    arg_required_else_help = true
)]
pub(crate) struct Cli {
    /// The config file [default: `$XDG_CONFIG_HOME/subgate/config.toml`].
    #[arg(long, global = true, value_name = "FILE", env = env_vars::CONFIG)]
    pub(crate) config: Option<PathBuf>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the gateway in the foreground.
    ///
    /// Stops on Ctrl-C or SIGTERM: new connections are refused and requests
    /// in flight get `server.shutdown_timeout` to finish; a second signal
    /// ends them at once. Usage records are always stored before exit.
    Serve(ServeArgs),
    /// Write, check or locate the config file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// List the models the gateway can serve right now.
    ///
    /// The same list `GET /v1/models` answers with: each model of a
    /// provider that has an account not resting, then the aliases. The
    /// upstreams' catalogs are fetched first; for a provider whose catalog
    /// cannot be fetched, its last fetched list (kept in the database) or
    /// the list built into subgate is shown. Providers with `models` in the
    /// config are not asked.
    Models {
        /// Print a JSON array of `{"id": …, "provider": …}` objects instead
        /// of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show the accounts and their state; enable, disable, remove or renew
    /// a login; clear an account's rests.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Make, list, revoke and rotate client keys: the keys people and
    /// tools use to call this gateway.
    ///
    /// Once a key exists, every client request needs one (unless
    /// `server.require_keys = false`), sent as `Authorization: Bearer`,
    /// `x-api-key`, `x-goog-api-key` or `?key=`. Without keys the gateway
    /// serves only a loopback address. A key may be limited to model
    /// globs, providers and accounts, and to requests and tokens per
    /// minute and requests in flight; a revoked or expired key stops
    /// working at once (within 2 seconds for a gateway running elsewhere).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The management API's admin token.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Add up the recorded requests: requests, failures and tokens per
    /// client key, model, account, provider or day.
    ///
    /// Read from the database, so it covers a running gateway too (records
    /// are written within a second of a request's end).
    Usage(UsageArgs),
    /// Log in to a subscription and keep the login as an account.
    ///
    /// `claude` (Claude Pro/Max): a browser on this machine returns to a
    /// loopback callback; with `--no-browser`, open the printed link
    /// anywhere, approve, and paste the code the page shows
    /// (`CODE#STATE`).
    ///
    /// `codex` (ChatGPT Plus/Pro/Team): a browser on this machine returns
    /// to port 1455, the port Codex's login allows; with `--no-browser`,
    /// open the printed page anywhere and enter the printed code (device
    /// login; enable it in ChatGPT's security settings if it is refused).
    ///
    /// `copilot` (GitHub Copilot): open the printed GitHub page anywhere and
    /// enter the printed code.
    ///
    /// `gemini-cli` (a Google account, as Gemini CLI uses it): a browser on
    /// this machine returns to a loopback callback; with `--no-browser`,
    /// open the printed link anywhere, approve, and paste the code the page
    /// shows. A new account is onboarded to Code Assist's free tier.
    ///
    /// `kiro` (an AWS Builder ID): open the printed AWS page anywhere and
    /// approve the printed code. Google, GitHub and Identity Center logins
    /// are made in Kiro IDE or kiro-cli and imported (`subgate import kiro`,
    /// `subgate import kiro-cli`).
    ///
    /// Logging in again to the same account updates it. A running `subgate
    /// serve` uses new accounts after a restart.
    Login(LoginArgs),
    /// Adopt the logins the official CLIs keep on this machine.
    ///
    /// Sources: `claude-code` (`~/.claude/.credentials.json`), `codex`
    /// (`$CODEX_HOME/auth.json`), `copilot`
    /// (`~/.config/github-copilot/apps.json` or `hosts.json`), `gemini-cli`
    /// (`~/.gemini/oauth_creds.json`), `kiro` (Kiro IDE's
    /// `~/.aws/sso/cache/kiro-auth-token.json`, with the client registration
    /// beside it for Builder ID and Identity Center logins), `kiro-cli`
    /// (`~/.local/share/kiro-cli/data.sqlite3`, or Amazon Q's), or `all`.
    ///
    /// Claude and Codex refresh tokens rotate: whoever refreshes first
    /// spends the token the other holds. Linked mode (the default) keeps
    /// both working: subgate writes each token it renews back to the CLI's
    /// file (atomically, keeping its permissions) and picks up the tokens
    /// the CLI renews. `--copy` takes a private copy instead: the CLI and
    /// subgate then log each other out on their next refresh, so use it
    /// only for a login the CLI no longer uses. GitHub and Google refresh
    /// tokens do not rotate; Copilot and Gemini CLI logins are always
    /// copied. Kiro IDE's file and kiro-cli's database are linked like
    /// Claude's.
    Import(ImportArgs),
    /// Remove a login: the same as `subgate accounts remove NAME`.
    ///
    /// Deletes the account's stored login and its health from the
    /// database. For a linked import the CLI's own file is left untouched,
    /// so that CLI stays logged in. A running `subgate serve` stops using
    /// the account after a restart.
    Logout(AccountArg),
    /// Print the version.
    Version,
}

#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    /// The subscription: `claude`, `codex`, `copilot`, `gemini-cli` or
    /// `kiro`, or the name of a provider entry of one of those kinds.
    #[arg(value_name = "PROVIDER")]
    pub(crate) provider: String,
    /// The account's name [default: its email, else its user name].
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Log in from a browser on any machine (paste the code back, or enter
    /// a code on the provider's page) instead of one on this machine.
    #[arg(long)]
    pub(crate) no_browser: bool,
    /// The loopback port the browser returns to [default: the provider's].
    #[arg(long)]
    pub(crate) port: Option<u16>,
    /// How long to wait for the login, e.g. `10m` [default: 10m].
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = subgate_config::parse_duration)]
    pub(crate) timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// What to import.
    #[arg(value_name = "SOURCE", default_value = "all", value_parser = ["claude-code", "codex", "copilot", "gemini-cli", "kiro", "kiro-cli", "all"])]
    pub(crate) source: String,
    /// Keep a private copy instead of linking to the CLI's file.
    #[arg(long)]
    pub(crate) copy: bool,
    /// Read this file instead of the CLI's usual one (one source only).
    #[arg(long, value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1].
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) host: Option<String>,
    /// Port to listen on; 0 picks a free one [default: 8420].
    #[arg(long, short)]
    pub(crate) port: Option<u16>,
    /// Where to keep the database [default: `$XDG_DATA_HOME/subgate`].
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Log line format [default: pretty].
    #[arg(long, value_name = "FORMAT", value_parser = ["pretty", "json"])]
    pub(crate) log_format: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Write a commented example config to the config path.
    Init {
        /// Replace a file that is already there.
        #[arg(long)]
        force: bool,
    },
    /// Check the config (file, environment and all) without starting.
    Check,
    /// Print the path of the config file in use.
    Path,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AdminCommand {
    /// Print the admin token the management API (`/admin/api/`) asks for
    /// as `Authorization: Bearer`; it is made at the first start and kept
    /// in the data directory as `admin-token` (mode 0600).
    Token,
}

#[derive(Debug, Args)]
pub(crate) struct UsageArgs {
    /// From when: a span back from now (`24h`, `7d`) or a UTC date
    /// (`2026-11-01`).
    #[arg(long, default_value = "24h")]
    pub(crate) since: String,
    /// What to add up by.
    #[arg(long, default_value = "key", value_parser = ["key", "model", "account", "provider", "day"])]
    pub(crate) by: String,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Make a key and print its secret (shown this once; only a hash is
    /// kept).
    Create {
        /// Its name, e.g. the teammate or tool it is for.
        #[arg(long)]
        name: String,
        /// Model globs it may use, comma-separated (`claude-*,gpt-5*`)
        /// [default: every model].
        #[arg(long, value_delimiter = ',', value_name = "GLOBS")]
        models: Vec<String>,
        /// Provider entries it may use, comma-separated [default: all].
        #[arg(long, value_delimiter = ',', value_name = "NAMES")]
        providers: Vec<String>,
        /// Accounts it may use, comma-separated [default: all].
        #[arg(long, value_delimiter = ',', value_name = "NAMES")]
        accounts: Vec<String>,
        /// How long it works, e.g. `30d` [default: until revoked].
        #[arg(long, value_name = "DURATION", value_parser = subgate_config::parse_duration)]
        expires: Option<std::time::Duration>,
        /// Most requests per minute [default: no limit].
        #[arg(long, value_name = "N")]
        rpm: Option<u32>,
        /// Most tokens (input and output) per minute; a request is refused
        /// while the last minute's total is at the limit [default: no limit].
        #[arg(long, value_name = "N")]
        tpm: Option<u64>,
        /// Most requests in flight at once [default: no limit].
        #[arg(long, value_name = "N")]
        concurrency: Option<u32>,
        /// Most spend per budget period, in US dollars at API prices
        /// (subscription requests count what they would have cost); a
        /// request is refused once it is spent [default: no budget].
        #[arg(long, value_name = "DOLLARS")]
        budget_usd: Option<f64>,
        /// The budget's period, renewed at its start (UTC).
        #[arg(long, value_name = "PERIOD", default_value = "month", value_parser = ["day", "week", "month"])]
        budget_period: String,
        /// Print a JSON object instead.
        #[arg(long)]
        json: bool,
    },
    /// Show every key (never a secret): name, prefix, state, scopes,
    /// expiry, last use.
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one key.
    Show {
        /// Its name or id.
        name: String,
        /// Print a JSON object instead.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: it stops working at once.
    Revoke {
        /// Its name or id.
        name: String,
    },
    /// Replace a key's secret: a new key with the same name, scopes and
    /// expiry; the old secret stops working.
    Rotate {
        /// Its name or id.
        name: String,
        /// Print a JSON object instead.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AccountsCommand {
    /// Show every account: its state, when its login expires, when a rest
    /// ends, its tightest quota window and why it rests.
    ///
    /// Lists the API keys of the config file and the logins kept in the
    /// database, disabled ones too (state `disabled`). A login stored but
    /// not served (its provider is not configured, its credential cannot
    /// be read, or it was added after the gateway started) shows as
    /// `inactive`. EXPIRES is when a login's access token runs out (it is
    /// renewed 5 minutes before); `-` for API keys. An account rests after
    /// the upstream refused it (rate limited, quota used up, credential
    /// rejected, failing) and is not used until the rest ends. A rest on
    /// one model only shows as e.g. `cooling_down (model gpt-4o)`. Rests
    /// are read from the database, so this shows those of a running
    /// gateway too. Quotas are asked of the providers that have a usage
    /// endpoint (Kimi, Claude).
    List {
        /// Print a JSON array with every field instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show everything about one account.
    ///
    /// Provider, name, id, how it authenticates, a login's email, plan and
    /// linked file, whether it is enabled, its state, when its login
    /// expires, every quota window with its reset, every rest (model,
    /// state, until when, why), its load and its priority. Never a secret.
    Show {
        #[command(flatten)]
        account: AccountArg,
        /// Print a JSON object with every field instead.
        #[arg(long)]
        json: bool,
    },
    /// Let a disabled login take traffic again.
    ///
    /// Only logins (`subgate login`, `subgate import`) can be enabled and
    /// disabled; API keys live in the config file. A running `subgate
    /// serve` uses the account again after a restart.
    Enable(AccountArg),
    /// Keep a login but stop using it.
    ///
    /// The login stays in the database (and keeps its place), and
    /// `subgate accounts enable` brings it back. A running `subgate serve`
    /// stops using it after a restart. Only logins can be disabled; to stop
    /// using an API key, delete it from the config file.
    Disable(AccountArg),
    /// Delete a login and its health from the database (`subgate logout`).
    ///
    /// For a linked import the CLI's own file is left untouched, so that
    /// CLI stays logged in. A running `subgate serve` stops using the
    /// account after a restart. API keys live in the config file: delete
    /// them there.
    Remove(AccountArg),
    /// Renew a login's access token now, even if it still looks valid.
    ///
    /// The new tokens are stored, and for a linked import written back to
    /// the CLI's file, as the automatic refresh does; a fresher login the
    /// CLI left in that file is taken up first. Prints the new expiry. A
    /// refusal rests the account as a failed automatic refresh would; a
    /// success ends a `credential_invalid` rest. API keys have nothing to
    /// refresh.
    Refresh(AccountArg),
    /// Clear an account's rests so it is used again at once.
    ///
    /// Clears cooldowns, exhausted quotas and invalid-credential marks,
    /// for the whole account and for each model. A gateway that is running
    /// picks the change up within 5 seconds. An upstream that still refuses
    /// the account rests it again.
    Reset(AccountArg),
    /// Set where a stored login stands under the `priority` strategy
    /// (lower is tried first; a running gateway uses it from its next
    /// start). An API key's priority is its place in the config file.
    Priority {
        #[command(flatten)]
        account: AccountArg,
        /// The priority; 0 is the primary.
        priority: u32,
    },
}

/// The account a command is about.
#[derive(Debug, Args)]
pub(crate) struct AccountArg {
    /// The account's name as `subgate accounts list` shows it, e.g.
    /// `openai#2`, `work` or `dev@example.com`; `provider/name` when two
    /// providers have an account of that name; or its id.
    #[arg(value_name = "NAME")]
    pub(crate) name: String,
}
