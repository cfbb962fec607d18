//! Opening a connection to an upstream: TCP with `TCP_NODELAY`, a tunnel
//! through an HTTP proxy when the environment names one, TLS (rustls with
//! the platform's roots), then HTTP/1.1's handshake.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use http::HeaderValue;
use hyper_util::client::proxy::matcher::{Intercept, Matcher};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use url::{Host, Position, Url};

use crate::pool::Conn;

/// Where a request goes: the origin it names, and the proxy (if any) that
/// carries it there.
pub(crate) struct Route {
    /// What idle connections are kept under: the origin, or the proxy for
    /// plain-HTTP requests it forwards.
    pub(crate) key: Box<str>,
    pub(crate) tls: bool,
    pub(crate) host: Host<String>,
    pub(crate) port: u16,
    pub(crate) proxy: Option<Proxy>,
}

/// An HTTP proxy from the environment (`HTTPS_PROXY`, `HTTP_PROXY`,
/// `ALL_PROXY`, `NO_PROXY`).
pub(crate) struct Proxy {
    host: Host<String>,
    port: u16,
    auth: Option<HeaderValue>,
}

impl Proxy {
    /// `Proxy-Authorization`, when the proxy URL carries a user.
    pub(crate) fn auth(&self) -> Option<&HeaderValue> {
        self.auth.as_ref()
    }
}

impl Route {
    /// Plans the route to `url`. Plain-HTTP requests through a proxy are
    /// forwarded (absolute-form); HTTPS ones go through a `CONNECT` tunnel.
    pub(crate) fn of(url: &Url, proxies: Option<&Matcher>) -> Result<Self, String> {
        let tls = match url.scheme() {
            "https" => true,
            "http" => false,
            other => return Err(format!("the scheme {other}:// is not supported")),
        };
        let host = url
            .host()
            .ok_or_else(|| "the URL has no host".to_owned())?
            .to_owned();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| "the URL has no port".to_owned())?;
        let proxy = match proxies {
            Some(matcher) => proxy_for(matcher, url)?,
            None => None,
        };
        let key = match &proxy {
            Some(proxy) if !tls => format!("via {}:{}", proxy.host, proxy.port),
            _ => format!(
                "{}://{}",
                url.scheme(),
                &url[Position::BeforeHost..Position::AfterPort]
            ),
        };
        Ok(Self {
            key: key.into_boxed_str(),
            tls,
            host,
            port,
            proxy,
        })
    }

    /// Whether requests are sent to a proxy that forwards them, which wants
    /// the absolute URL in the request line.
    pub(crate) fn forwarded(&self) -> Option<&Proxy> {
        self.proxy.as_ref().filter(|_| !self.tls)
    }

    /// Opens a connection along the route and shakes hands.
    pub(crate) async fn connect(&self) -> io::Result<Conn> {
        let stream = match &self.proxy {
            Some(proxy) => {
                let mut stream = tcp(&proxy.host, proxy.port).await?;
                if self.tls {
                    tunnel(&mut stream, &self.host, self.port, proxy.auth()).await?;
                }
                stream
            }
            None => tcp(&self.host, self.port).await?,
        };
        let io = if self.tls {
            let name = match &self.host {
                Host::Domain(domain) => ServerName::try_from(domain.clone())
                    .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?,
                Host::Ipv4(ip) => ServerName::from(IpAddr::V4(*ip)),
                Host::Ipv6(ip) => ServerName::from(IpAddr::V6(*ip)),
            };
            let connector = TlsConnector::from(tls_config()?);
            Io::Tls(Box::new(connector.connect(name, stream).await?))
        } else {
            Io::Plain(stream)
        };
        Conn::handshake(TokioIo::new(io))
            .await
            .map_err(io::Error::other)
    }
}

fn proxy_for(matcher: &Matcher, url: &Url) -> Result<Option<Proxy>, String> {
    let uri: http::Uri = url[..Position::AfterPort]
        .parse()
        .map_err(|_| "the URL is not a valid URI".to_owned())?;
    let Some(intercept) = matcher.intercept(&uri) else {
        return Ok(None);
    };
    proxy_of(&intercept).map(Some)
}

fn proxy_of(intercept: &Intercept) -> Result<Proxy, String> {
    let uri = intercept.uri();
    if uri.scheme_str() != Some("http") {
        return Err(format!(
            "only http:// proxies are supported; the environment names {}://{}",
            uri.scheme_str().unwrap_or(""),
            uri.authority().map_or("", |authority| authority.host())
        ));
    }
    let host = uri
        .host()
        .ok_or_else(|| "the proxy URL has no host".to_owned())?;
    let host =
        Host::parse(host).map_err(|error| format!("the proxy host is not valid: {error}"))?;
    Ok(Proxy {
        host,
        port: uri.port_u16().unwrap_or(80),
        auth: intercept.basic_auth().cloned(),
    })
}

/// The proxies the environment names, or `None` when it names none (the
/// usual case, which then costs nothing per request).
pub(crate) fn proxies_from_env() -> Option<Matcher> {
    const NAMES: [&str; 6] = [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ];
    NAMES
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
        .then(Matcher::from_env)
}

async fn tcp(host: &Host<String>, port: u16) -> io::Result<TcpStream> {
    let stream = match host {
        Host::Domain(domain) => TcpStream::connect((domain.as_str(), port)).await?,
        Host::Ipv4(ip) => TcpStream::connect(SocketAddr::from((*ip, port))).await?,
        Host::Ipv6(ip) => TcpStream::connect(SocketAddr::from((*ip, port))).await?,
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The longest `CONNECT` answer head a proxy may send.
const MAX_TUNNEL_HEAD: usize = 8 * 1024;

/// Asks the proxy on `stream` for a tunnel to `host:port`.
async fn tunnel(
    stream: &mut TcpStream,
    host: &Host<String>,
    port: u16,
    auth: Option<&HeaderValue>,
) -> io::Result<()> {
    let mut head = format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n");
    if let Some(auth) = auth.and_then(|auth| auth.to_str().ok()) {
        head.push_str("Proxy-Authorization: ");
        head.push_str(auth);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;

    let mut answer = Vec::with_capacity(256);
    let mut buf = [0u8; 512];
    while !answer.windows(4).any(|window| window == b"\r\n\r\n") {
        if answer.len() > MAX_TUNNEL_HEAD {
            return Err(io::Error::other(
                "the proxy's answer to CONNECT is too long",
            ));
        }
        let read = stream.read(&mut buf).await?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the proxy closed the connection during CONNECT",
            ));
        }
        answer.extend_from_slice(&buf[..read]);
    }
    let status_line = answer
        .split(|&byte| byte == b'\r')
        .next()
        .unwrap_or_default();
    let status_line = String::from_utf8_lossy(status_line);
    let mut words = status_line.split(' ');
    let version = words.next().unwrap_or_default();
    let status = words.next().unwrap_or_default();
    if version.starts_with("HTTP/1.") && status == "200" {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("the proxy refused the tunnel: {}", status_line.trim()),
        ))
    }
}

/// One TLS configuration for every upstream: the platform's roots,
/// HTTP/1.1 offered by ALPN.
pub(crate) fn tls_config() -> io::Result<Arc<ClientConfig>> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            use rustls_platform_verifier::ConfigVerifierExt;

            let mut config = ClientConfig::with_platform_verifier()
                .map_err(|error| format!("could not load the platform's TLS roots: {error}"))?;
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(Arc::new(config))
        })
        .clone()
        .map_err(io::Error::other)
}

/// A connection's bytes: plain TCP, or TLS over it.
pub(crate) enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Self::Tls(stream) => Pin::new(stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Self::Tls(stream) => Pin::new(stream).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Self::Tls(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(stream) => stream.is_write_vectored(),
            Self::Tls(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Self::Tls(stream) => Pin::new(stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Self::Tls(stream) => Pin::new(stream).poll_shutdown(cx),
        }
    }
}
