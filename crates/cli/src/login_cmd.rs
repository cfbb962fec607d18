//! `subgate login` and `subgate import`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use subgate_engine::{Engine, ImportSource, Saved};
use subgate_providers::LoginMethod;

use crate::args::{ImportArgs, LoginArgs};
use crate::models_cmd::with_engine;

pub(crate) fn login(config_file: Option<PathBuf>, args: &LoginArgs) -> Result<()> {
    let saved = with_engine(config_file, async |engine| {
        let entry = engine.login_entry(&args.provider)?.clone();
        let methods = engine.login_provider(&entry)?.login_methods();
        // The provider's preferred way, or the first that needs no browser
        // here.
        let method = methods
            .iter()
            .copied()
            .find(|method| !args.no_browser || *method != LoginMethod::Browser)
            .ok_or_else(|| anyhow!("provider `{}` has no login", entry.name))?;
        let saved = match method {
            LoginMethod::Browser => browser_login(engine, &entry, args).await?,
            LoginMethod::Paste => paste_login(engine, &entry, args).await?,
            LoginMethod::Device => device_login(engine, &entry, args).await?,
        };
        Ok(saved)
    })?;
    let mut out = std::io::stdout().lock();
    let verb = if saved.updated { "updated" } else { "added" };
    writeln!(
        out,
        "Logged in: account `{}` of provider `{}` {verb}{}.",
        saved.name,
        saved.provider,
        saved
            .email
            .as_deref()
            .map(|email| format!(" ({email})"))
            .unwrap_or_default()
    )?;
    writeln!(out, "A running `subgate serve` uses it after a restart.")?;
    Ok(())
}

async fn browser_login(
    engine: &Engine,
    entry: &subgate_config::ProviderConfig,
    args: &LoginArgs,
) -> Result<Saved> {
    let provider = engine.login_provider(entry)?;
    let spec = provider
        .callback()
        .ok_or_else(|| anyhow!("provider `{}` has no browser login", entry.name))?;
    let server = subgate_auth::CallbackServer::bind(args.port.unwrap_or(spec.port), spec.path)
        .await
        .map_err(|error| match error {
            subgate_auth::CallbackError::PortInUse { port } => anyhow!(
                "port {port} on 127.0.0.1 is in use, so the browser cannot return to this login; free it, pick another with --port, or use --no-browser"
            ),
            other => other.into(),
        })?;
    let start = engine
        .begin_login(entry, Some(&server.redirect_uri()))
        .await?;
    let mut err = std::io::stderr().lock();
    writeln!(
        err,
        "Open this link to log in to {}:\n\n  {}\n",
        entry.name, start.url
    )?;
    drop(err);
    open_browser(&start.url);
    let callback = waiting(
        "Waiting for the browser",
        args.timeout,
        server.wait(&start.flow),
    )
    .await?
    .context("the browser login did not complete")?;
    Ok(engine
        .finish_login(&start.flow, &callback.code, args.name.as_deref())
        .await?)
}

async fn paste_login(
    engine: &Engine,
    entry: &subgate_config::ProviderConfig,
    args: &LoginArgs,
) -> Result<Saved> {
    let start = engine.begin_login(entry, None).await?;
    let mut err = std::io::stderr().lock();
    writeln!(
        err,
        "Open this link on any machine, approve, and paste the code the page shows:\n\n  {}\n",
        start.url
    )?;
    write!(err, "Code: ")?;
    err.flush()?;
    drop(err);
    let line = tokio::time::timeout(args.timeout, read_line())
        .await
        .map_err(|_| anyhow!("no code was pasted within {}s", args.timeout.as_secs()))??;
    Ok(engine
        .finish_pasted_login(&start.flow, &line, args.name.as_deref())
        .await?)
}

async fn device_login(
    engine: &Engine,
    entry: &subgate_config::ProviderConfig,
    args: &LoginArgs,
) -> Result<Saved> {
    let start = engine.begin_device_login(entry).await?;
    let mut err = std::io::stderr().lock();
    writeln!(
        err,
        "To log in to {}, open\n\n  {}\n\nand enter the code\n\n  {}\n",
        entry.name, start.verification_uri, start.user_code
    )?;
    drop(err);
    if !args.no_browser {
        open_browser(&start.verification_uri);
    }
    Ok(waiting(
        "Waiting for approval",
        args.timeout,
        engine.finish_device_login(entry, &start, args.name.as_deref()),
    )
    .await??)
}

async fn read_line() -> Result<String> {
    let read = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map(|_| line)
    });
    read.await
        .context("reading the code")?
        .context("reading the code")
}

/// Opens `url` in the user's browser: `$BROWSER` if set, else the
/// platform's opener. Failing is fine: the link is printed.
fn open_browser(url: &str) {
    let opener = std::env::var("BROWSER")
        .ok()
        .filter(|browser| !browser.is_empty());
    let program = opener.as_deref().unwrap_or(if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    });
    let spawned = std::process::Command::new(program)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if spawned.is_err() {
        tracing::debug!(program, "Could not open a browser; the link is printed.");
    }
}

/// Runs `work` for at most `limit`, with a spinner on a terminal.
async fn waiting<T>(what: &str, limit: Duration, work: impl Future<Output = T>) -> Result<T> {
    const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
    let terminal = std::io::stderr().is_terminal();
    let spin = async {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        for frame in FRAMES.iter().cycle() {
            tick.tick().await;
            if terminal {
                let _ = write!(std::io::stderr(), "\r{frame} {what}… (Ctrl-C to stop)");
            }
        }
    };
    let outcome = tokio::select! {
        value = tokio::time::timeout(limit, work) => value,
        () = spin => unreachable!("the spinner cycles forever"),
    };
    if terminal {
        let _ = write!(std::io::stderr(), "\r\x1b[2K");
    }
    outcome.map_err(|_| anyhow!("gave up after {}s; start the login again", limit.as_secs()))
}

pub(crate) fn import(config_file: Option<PathBuf>, args: &ImportArgs) -> Result<()> {
    let sources: Vec<ImportSource> = match args.source.as_str() {
        "all" => ImportSource::ALL.to_vec(),
        name => ImportSource::ALL
            .into_iter()
            .filter(|source| source.as_str() == name)
            .collect(),
    };
    if args.file.is_some() && sources.len() != 1 {
        bail!(
            "--file reads one source; name it (claude-code, codex, copilot, gemini-cli, kiro or kiro-cli)"
        );
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let codex_home = std::env::var_os("CODEX_HOME").map(PathBuf::from);
    let lines = with_engine(config_file, async |engine| {
        let mut lines = Vec::new();
        for source in sources {
            let paths = args.file.clone().map_or_else(
                || source.paths(&home, codex_home.as_deref()),
                |file| vec![file],
            );
            lines.push(import_one(engine, source, &paths, !args.copy).await);
        }
        Ok(lines)
    })?;
    let mut out = std::io::stdout().lock();
    for line in lines {
        writeln!(out, "{line}")?;
    }
    writeln!(
        out,
        "A running `subgate serve` uses new accounts after a restart."
    )?;
    Ok(())
}

/// Imports what one source has; returns the line that says what happened.
async fn import_one(
    engine: &Engine,
    source: ImportSource,
    paths: &[PathBuf],
    link: bool,
) -> String {
    let label = source.as_str();
    let Some(path) = paths.iter().find(|path| path.is_file()) else {
        let looked: Vec<String> = paths
            .iter()
            .map(|path| path.display().to_string())
            .collect();
        return format!("{label}: nothing found (looked at {})", looked.join(", "));
    };
    let found = match subgate_engine::read_import(source, path).await {
        Ok(found) => found,
        Err(error) => return format!("{label}: not imported: {error}"),
    };
    let entry = match engine.login_entry(source.kind().as_str()) {
        Ok(entry) => entry.clone(),
        Err(error) => return format!("{label}: not imported: {error}"),
    };
    let mut lines = Vec::new();
    for found in found {
        let mut login = found.login;
        let linked = link && source.refreshes();
        if linked {
            login.linked = Some(subgate_providers::Linked {
                path: found.path.clone(),
                format: label.to_owned(),
            });
        }
        let mode = if linked { "linked" } else { "copied" };
        lines.push(match engine.save_import(&entry, login).await {
            Ok(saved) => format!(
                "{label}: {} account `{}` of provider `{}` from {} ({mode})",
                if saved.updated { "updated" } else { "added" },
                saved.name,
                saved.provider,
                found.path.display()
            ),
            Err(error) => format!("{label}: not imported: {error}"),
        });
    }
    lines.join("\n")
}
