//! The loopback listener a browser login is redirected back to
//! (`http://localhost:PORT/callback?code=…&state=…`).
//!
//! It answers exactly one real callback: requests for other paths (a
//! browser's favicon) get a 404 and the wait goes on. Only 127.0.0.1 is
//! bound; nothing outside the machine can reach it.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The largest request head read from the browser.
const MAX_HEAD: usize = 16 * 1024;
/// How long one connection may take to send its request.
const READ_LIMIT: Duration = Duration::from_secs(10);

/// A bound callback listener.
#[derive(Debug)]
pub struct CallbackServer {
    listener: TcpListener,
    port: u16,
    path: String,
}

/// What the authorization server sent back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    /// The authorization code to exchange.
    pub code: String,
}

/// Why no code came back.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// Another program holds the port.
    #[error(
        "port {port} on 127.0.0.1 is in use, so the login cannot receive its callback; stop whatever holds it (another login?) or use the no-browser login"
    )]
    PortInUse {
        /// The port asked for.
        port: u16,
    },
    /// The listener failed.
    #[error("the login callback listener failed: {0}")]
    Io(#[from] io::Error),
    /// The user (or the server) refused.
    #[error("the login was refused: {0}")]
    Denied(String),
    /// A callback came back for another login attempt.
    #[error("the login callback carried an unexpected state; start the login again")]
    StateMismatch,
}

impl CallbackServer {
    /// Binds `127.0.0.1:port` (0 picks a free port) for callbacks on `path`.
    pub async fn bind(port: u16, path: &str) -> Result<Self, CallbackError> {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|error| match error.kind() {
                io::ErrorKind::AddrInUse => CallbackError::PortInUse { port },
                _ => CallbackError::Io(error),
            })?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            listener,
            port,
            path: path.to_owned(),
        })
    }

    /// The port bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The redirect URI to register with the authorization request.
    pub fn redirect_uri(&self) -> String {
        format!("http://localhost:{}{}", self.port, self.path)
    }

    /// Waits for the callback of the login whose `state` is given. The
    /// caller bounds the wait.
    pub async fn wait(self, state: &str) -> Result<Callback, CallbackError> {
        loop {
            let (mut stream, _) = self.listener.accept().await?;
            let Ok(Ok(target)) = tokio::time::timeout(READ_LIMIT, read_target(&mut stream)).await
            else {
                continue;
            };
            let Some(query) = target
                .strip_prefix(self.path.as_str())
                .and_then(|rest| rest.strip_prefix('?').or(rest.is_empty().then_some("")))
            else {
                answer(&mut stream, "404 Not Found", "Not found.").await;
                continue;
            };
            let outcome = read_callback(query, state);
            let page = match &outcome {
                Ok(_) => "Login complete. You can close this tab and return to the terminal.",
                Err(_) => "The login did not complete. Return to the terminal for details.",
            };
            answer(&mut stream, "200 OK", page).await;
            return outcome;
        }
    }
}

/// Reads the request line's target (`/callback?code=…`).
async fn read_target(stream: &mut TcpStream) -> io::Result<String> {
    let mut head = Vec::with_capacity(1024);
    let mut buffer = [0; 2048];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        let read = stream.read(&mut buffer).await?;
        if read == 0 || head.len() + read > MAX_HEAD {
            return Err(io::ErrorKind::InvalidData.into());
        }
        head.extend_from_slice(&buffer[..read]);
    }
    let line = head.split(|&byte| byte == b'\r').next().unwrap_or_default();
    let line = std::str::from_utf8(line).map_err(|_| io::ErrorKind::InvalidData)?;
    let mut parts = line.split(' ');
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) => Ok(target.to_owned()),
        _ => Err(io::ErrorKind::InvalidData.into()),
    }
}

fn read_callback(query: &str, state: &str) -> Result<Callback, CallbackError> {
    let mut code = None;
    let mut returned_state = None;
    let mut error = None;
    let mut description = None;
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match &*name {
            "code" => code = Some(value.into_owned()),
            "state" => returned_state = Some(value.into_owned()),
            "error" => error = Some(value.into_owned()),
            "error_description" => description = Some(value.into_owned()),
            _ => {}
        }
    }
    if let Some(error) = error {
        return Err(CallbackError::Denied(description.unwrap_or(error)));
    }
    if returned_state.as_deref() != Some(state) {
        return Err(CallbackError::StateMismatch);
    }
    code.filter(|code| !code.is_empty())
        .map(|code| Callback { code })
        .ok_or_else(|| CallbackError::Denied("the callback carried no code".to_owned()))
}

async fn answer(stream: &mut TcpStream, status: &str, text: &str) {
    let body =
        format!("<!doctype html><meta charset=\"utf-8\"><title>subgate</title><p>{text}</p>\n");
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    // The browser may be gone; the outcome stands either way.
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(port: u16, target: &str) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream
            .write_all(format!("GET {target} HTTP/1.1\r\nhost: localhost\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn takes_the_code_after_ignoring_other_paths() {
        let server = CallbackServer::bind(0, "/callback").await.unwrap();
        let port = server.port();
        assert_eq!(
            server.redirect_uri(),
            format!("http://localhost:{port}/callback")
        );
        let (outcome, (favicon, page)) = tokio::join!(server.wait("s1"), async {
            let favicon = get(port, "/favicon.ico").await;
            let page = get(port, "/callback?code=c%2B1&state=s1").await;
            (favicon, page)
        });
        assert_eq!(outcome.unwrap(), Callback { code: "c+1".into() });
        assert!(favicon.starts_with("HTTP/1.1 404"));
        assert!(page.contains("Login complete"));
    }

    #[tokio::test]
    async fn refusals_and_foreign_states_are_errors() {
        let server = CallbackServer::bind(0, "/cb").await.unwrap();
        let port = server.port();
        let (outcome, _) = tokio::join!(
            server.wait("s1"),
            get(
                port,
                "/cb?error=access_denied&error_description=User%20said%20no&state=s1"
            )
        );
        assert_eq!(
            outcome.unwrap_err().to_string(),
            "the login was refused: User said no"
        );
        let server = CallbackServer::bind(0, "/cb").await.unwrap();
        let port = server.port();
        let (outcome, _) = tokio::join!(server.wait("s1"), get(port, "/cb?code=x&state=other"));
        assert!(matches!(outcome, Err(CallbackError::StateMismatch)));
    }

    #[tokio::test]
    async fn an_occupied_port_is_named() {
        let holder = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = holder.local_addr().unwrap().port();
        let error = CallbackServer::bind(port, "/cb").await.unwrap_err();
        assert!(matches!(error, CallbackError::PortInUse { port: p } if p == port));
        assert!(error.to_string().contains(&format!("port {port}")));
    }
}
