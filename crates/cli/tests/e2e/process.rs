//! The `subgate` binary as a child process, with a clean environment.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};

/// A command for the binary with only `HOME` (a temporary one) and `PATH`
/// set, plus `env`.
pub(crate) fn subgate(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_subgate"));
    command
        .args(args)
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs a short command to the end: status, stdout, stderr.
pub(crate) async fn run(
    home: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (ExitStatus, String, String) {
    let output = tokio::time::timeout(Duration::from_secs(30), subgate(home, args, env).output())
        .await
        .expect("the command finishes")
        .unwrap();
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A running `subgate serve`.
pub(crate) struct Server {
    child: Child,
    stdout: BufReader<ChildStdout>,
    stderr: ChildStderr,
    /// The line it printed at start.
    pub(crate) announce: String,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
}

impl Server {
    /// Starts `subgate serve --port 0 …` and waits for its one line.
    pub(crate) async fn start(home: &Path, extra_args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut args = vec!["serve", "--port", "0"];
        args.extend_from_slice(extra_args);
        let mut child = subgate(home, &args, env).spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut stderr = child.stderr.take().unwrap();
        let mut announce = String::new();
        let read =
            tokio::time::timeout(Duration::from_secs(20), stdout.read_line(&mut announce)).await;
        if !matches!(read, Ok(Ok(n)) if n > 0) {
            let mut errors = String::new();
            let _ =
                tokio::time::timeout(Duration::from_secs(2), stderr.read_to_string(&mut errors))
                    .await;
            panic!("subgate serve printed no line; stderr:\n{errors}");
        }
        let address = announce
            .split_whitespace()
            .find_map(|word| word.strip_prefix("http://"))
            .expect("the line names the address")
            .to_owned();
        Self {
            child,
            stdout,
            stderr,
            announce,
            base: format!("http://{address}"),
        }
    }

    /// `base` + `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id().expect("still running")
    }

    /// Sends SIGTERM (or another signal by name).
    pub(crate) async fn signal(&self, name: &str) {
        let pid = self.child.id().expect("still running").to_string();
        let status = Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .await
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to end: status, the rest of stdout, stderr.
    pub(crate) async fn wait(mut self) -> (ExitStatus, String, String) {
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("subgate exits")
            .unwrap();
        let mut out = String::new();
        self.stdout.read_to_string(&mut out).await.unwrap();
        let mut err = String::new();
        self.stderr.read_to_string(&mut err).await.unwrap();
        (status, out, err)
    }
}

/// Where the default data directory lands for a given `HOME`.
pub(crate) fn default_data_dir(home: &Path) -> PathBuf {
    home.join(".local/share/subgate")
}
