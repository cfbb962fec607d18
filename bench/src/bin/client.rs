//! The bench's measuring tools, one subcommand each:
//!
//!     bench-client stream  --url URL --api openai|anthropic --model M
//!                          [--streams 200] [--concurrency 16] [--chunks 200] [--gap-ms 1]
//!     bench-client hold    --url URL --api … --model M [--streams 1000]
//!                          [--ready-file F] [--hold-secs 120]
//!     bench-client startup --port P [--runs 9] -- COMMAND ARGS…
//!     bench-client oha     FILE                 # one oha JSON summary as key=value
//!     bench-client report  RAW OUT.md           # the result table (see `report`)
//!
//! Each prints one line of `key=value` pairs for `run.sh` to collect.

use std::net::{SocketAddr, TcpStream as StdTcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use subgate_bench::{Directive, Flags, percentile, report};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

fn main() {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let outcome = match command.as_str() {
        "stream" => async_main(stream(rest)),
        "hold" => async_main(hold(rest)),
        "startup" => startup(rest),
        "oha" => oha(&rest),
        "report" => report::run(&rest),
        _ => Err("usage: bench-client stream|hold|startup|oha|report …".to_owned()),
    };
    match outcome {
        Ok(line) => println!("{line}"),
        Err(error) => {
            eprintln!("bench-client {command}: {error}");
            std::process::exit(1);
        }
    }
}

fn async_main(work: impl Future<Output = Result<String, String>>) -> Result<String, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| error.to_string())?
        .block_on(work)
}

/// Where streaming requests go and in which API.
struct Target {
    address: SocketAddr,
    host: String,
    anthropic: bool,
    model: String,
}

impl Target {
    fn from_flags(flags: &Flags) -> Result<Self, String> {
        let url = flags.need("url")?;
        let host = url
            .strip_prefix("http://")
            .ok_or("--url must be http://HOST:PORT")?
            .trim_end_matches('/')
            .to_owned();
        let address = host
            .parse()
            .map_err(|_| format!("--url {url}: want http://IP:PORT"))?;
        let anthropic = match flags.need("api")?.as_str() {
            "openai" => false,
            "anthropic" => true,
            other => return Err(format!("--api {other}: want openai or anthropic")),
        };
        Ok(Self {
            address,
            host,
            anthropic,
            model: flags.need("model")?,
        })
    }

    /// A streaming request in the target's API, carrying `directive`.
    fn request(&self, directive: &Directive) -> Result<Request<Full<Bytes>>, String> {
        let text = format!("Say hello in many words. {}", directive.marker());
        let model = serde_json::to_string(&self.model).map_err(|error| error.to_string())?;
        let (path, body) = if self.anthropic {
            (
                "/v1/messages",
                format!(
                    r#"{{"model":{model},"max_tokens":1024,"stream":true,"system":"You are a helpful assistant.","messages":[{{"role":"user","content":"{text}"}}]}}"#
                ),
            )
        } else {
            (
                "/v1/chat/completions",
                format!(
                    r#"{{"model":{model},"max_tokens":1024,"stream":true,"stream_options":{{"include_usage":true}},"messages":[{{"role":"system","content":"You are a helpful assistant."}},{{"role":"user","content":"{text}"}}]}}"#
                ),
            )
        };
        let mut request = Request::post(path)
            .header(header::HOST, &self.host)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, "Bearer unused");
        if self.anthropic {
            request = request.header("anthropic-version", "2023-06-01");
        }
        request
            .body(Full::new(Bytes::from(body)))
            .map_err(|error| error.to_string())
    }

    /// The text that ends a complete stream in the target's API.
    fn end_marker(&self) -> &'static [u8] {
        if self.anthropic {
            b"message_stop"
        } else {
            b"[DONE]"
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        let stream = TcpStream::connect(self.address)
            .await
            .map_err(|error| format!("connecting to {}: {error}", self.address))?;
        stream
            .set_nodelay(true)
            .map_err(|error| error.to_string())?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| error.to_string())?;
        tokio::spawn(connection);
        Ok(sender)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// One stream's timings; `None` for a stream that failed or was cut.
struct Sample {
    first_token: Duration,
    total: Duration,
    events: usize,
}

async fn one_stream(
    sender: &mut SendRequest<Full<Bytes>>,
    target: &Target,
    directive: &Directive,
) -> Result<Sample, String> {
    let request = target.request(directive)?;
    sender.ready().await.map_err(|error| error.to_string())?;
    let start = Instant::now();
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| error.to_string())?;
    let status = response.status();
    let mut body = response.into_body();
    let mut whole = Vec::new();
    let mut first_token = None;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|error| error.to_string())?.into_data() else {
            continue;
        };
        whole.extend_from_slice(&data);
        if first_token.is_none() && find(&whole, b"Hello") {
            first_token = Some(start.elapsed());
        }
    }
    let total = start.elapsed();
    if status != StatusCode::OK {
        return Err(format!(
            "status {status}: {}",
            String::from_utf8_lossy(&whole)
        ));
    }
    match first_token {
        Some(first_token) if find(&whole, target.end_marker()) => Ok(Sample {
            first_token,
            total,
            events: whole.windows(2).filter(|pair| pair == b"\n\n").count(),
        }),
        _ => Err(format!(
            "incomplete stream: {}",
            String::from_utf8_lossy(&whole)
        )),
    }
}

/// Runs `--streams` streams over `--concurrency` kept-alive connections and
/// prints the time to the first token and to the end, p50 and p99.
async fn stream(args: Vec<String>) -> Result<String, String> {
    let flags = Flags::parse(args)?;
    let target = Arc::new(Target::from_flags(&flags)?);
    let streams: usize = flags.get("streams", 200)?;
    let concurrency: usize = flags.get("concurrency", 16)?;
    let directive = Directive {
        chunks: Some(flags.get("chunks", 200)?),
        gap: Duration::from_millis(flags.get("gap-ms", 1)?),
        hold: Duration::ZERO,
    };
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (target, next) = (target.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut failures = Vec::new();
            let mut sender = None;
            while next.fetch_add(1, Ordering::Relaxed) < streams {
                if sender.as_ref().is_none_or(SendRequest::is_closed) {
                    sender = Some(target.connect().await?);
                }
                let Some(connection) = sender.as_mut() else {
                    continue;
                };
                match one_stream(connection, &target, &directive).await {
                    Ok(sample) => samples.push(sample),
                    Err(error) => {
                        failures.push(error);
                        sender = None;
                    }
                }
            }
            Ok::<_, String>((samples, failures))
        }));
    }
    let mut samples = Vec::new();
    let mut failures = Vec::new();
    for worker in workers {
        let (mine, failed) = worker.await.map_err(|error| error.to_string())??;
        samples.extend(mine);
        failures.extend(failed);
    }
    let elapsed = started.elapsed();
    if let Some(first) = failures.first() {
        eprintln!(
            "bench-client stream: {} failed, first: {first:.400}",
            failures.len()
        );
    }
    let mut first: Vec<Duration> = samples.iter().map(|s| s.first_token).collect();
    let mut total: Vec<Duration> = samples.iter().map(|s| s.total).collect();
    first.sort_unstable();
    total.sort_unstable();
    let events = samples.iter().map(|s| s.events).sum::<usize>() / samples.len().max(1);
    Ok(format!(
        "streams={streams} ok={} events={events} ttft_p50_us={} ttft_p99_us={} total_p50_us={} total_p99_us={} elapsed_ms={}",
        samples.len(),
        percentile(&first, 50.0).as_micros(),
        percentile(&first, 99.0).as_micros(),
        percentile(&total, 50.0).as_micros(),
        percentile(&total, 99.0).as_micros(),
        elapsed.as_millis()
    ))
}

/// Opens `--streams` streams at once, each on its own connection, and holds
/// them after their first token. Once every one has its first token (or
/// failed), writes `ready=N failed=M` to `--ready-file` and waits until
/// killed or `--hold-secs` pass.
async fn hold(args: Vec<String>) -> Result<String, String> {
    let flags = Flags::parse(args)?;
    let target = Arc::new(Target::from_flags(&flags)?);
    let streams: usize = flags.get("streams", 1000)?;
    let hold_secs: u64 = flags.get("hold-secs", 120)?;
    let ready_file = flags.get("ready-file", String::new())?;
    let directive = Directive {
        chunks: Some(200),
        gap: Duration::ZERO,
        hold: Duration::from_secs(hold_secs),
    };
    // Connect a hundred at a time, so no accept queue overflows.
    let opening = Arc::new(Semaphore::new(100));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<bool>(streams.max(1));
    let mut held = Vec::new();
    for _ in 0..streams {
        let (target, opening, done) = (target.clone(), opening.clone(), done_tx.clone());
        held.push(tokio::spawn(async move {
            let permit = opening.acquire_owned().await;
            let opened = open_and_wait(&target, &directive).await;
            drop(permit);
            let _ = done.send(opened.is_ok()).await;
            if let Ok((_sender, mut body)) = opened {
                // Keep the connection and read whatever else comes.
                while let Some(Ok(_)) = body.frame().await {}
            }
        }));
    }
    let (mut ready, mut failed) = (0, 0);
    while ready + failed < streams {
        match tokio::time::timeout(Duration::from_mins(1), done_rx.recv()).await {
            Ok(Some(true)) => ready += 1,
            Ok(Some(false)) => failed += 1,
            Ok(None) | Err(_) => break,
        }
    }
    let line = format!("ready={ready} failed={failed}");
    if !ready_file.is_empty() {
        std::fs::write(&ready_file, format!("{line}\n")).map_err(|error| error.to_string())?;
    }
    tokio::time::sleep(Duration::from_secs(hold_secs)).await;
    Ok(line)
}

/// Sends one held stream's request and reads up to its first token.
async fn open_and_wait(
    target: &Target,
    directive: &Directive,
) -> Result<(SendRequest<Full<Bytes>>, hyper::body::Incoming), String> {
    let mut sender = target.connect().await?;
    let response = sender
        .send_request(target.request(directive)?)
        .await
        .map_err(|error| error.to_string())?;
    if response.status() != StatusCode::OK {
        return Err(format!("status {}", response.status()));
    }
    let mut body = response.into_body();
    let mut seen = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.map_err(|error| error.to_string())?.into_data() {
            seen.extend_from_slice(&data);
            if find(&seen, b"Hello") {
                return Ok((sender, body));
            }
        }
    }
    Err("the stream ended before its first token".to_owned())
}

/// Starts the command `--runs` times (after one start not counted, which
/// creates its data) and times each from spawn to the first 200 from
/// `GET /healthz` on `--port`.
fn startup(args: Vec<String>) -> Result<String, String> {
    let flags = Flags::parse(args)?;
    let runs: usize = flags.get("runs", 9)?;
    let port: u16 = flags.get("port", 0)?;
    let (program, arguments) = flags.rest.split_first().ok_or("the command is missing")?;
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut times = Vec::new();
    for run in 0..=runs {
        let started = Instant::now();
        let mut child = std::process::Command::new(program)
            .args(arguments)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|error| format!("starting {program}: {error}"))?;
        let healthy = loop {
            if healthz(address) {
                break Some(started.elapsed());
            }
            if started.elapsed() > Duration::from_secs(20)
                || child.try_wait().ok().flatten().is_some()
            {
                break None;
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        stop(&mut child);
        let elapsed = healthy.ok_or_else(|| format!("{program} did not become healthy"))?;
        if run > 0 {
            times.push(elapsed);
        }
    }
    times.sort_unstable();
    Ok(format!(
        "runs={runs} p50_us={} min_us={} max_us={}",
        percentile(&times, 50.0).as_micros(),
        times.first().copied().unwrap_or_default().as_micros(),
        times.last().copied().unwrap_or_default().as_micros()
    ))
}

/// Whether `GET /healthz` answers 200 right now.
fn healthz(address: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = StdTcpStream::connect_timeout(&address, Duration::from_millis(100)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.ends_with(b" 200")
}

/// SIGTERM, then SIGKILL if the process is still there after 10 s.
fn stop(child: &mut std::process::Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Reads oha's JSON summary (`--output-format json`).
fn oha(args: &[String]) -> Result<String, String> {
    let path = args.first().ok_or("the JSON file is missing")?;
    let text = std::fs::read_to_string(path).map_err(|error| format!("{path}: {error}"))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|error| format!("{path}: {error}"))?;
    let seconds = |value: &serde_json::Value| value.as_f64().unwrap_or(f64::NAN) * 1e6;
    let statuses = json["statusCodeDistribution"]
        .as_object()
        .ok_or("no statusCodeDistribution")?;
    let ok = statuses
        .get("200")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    let all: u64 = statuses
        .values()
        .filter_map(serde_json::Value::as_u64)
        .sum();
    // Requests still in flight when `-z` runs out are cut; they are not
    // failures.
    let errors: u64 = json["errorDistribution"].as_object().map_or(0, |errors| {
        errors
            .iter()
            .filter(|(kind, _)| !kind.contains("deadline"))
            .filter_map(|(_, count)| count.as_u64())
            .sum()
    });
    Ok(format!(
        "count={all} ok={ok} errors={errors} rps={:.1} p50_us={:.0} p99_us={:.0}",
        json["summary"]["requestsPerSec"]
            .as_f64()
            .unwrap_or(f64::NAN),
        seconds(&json["latencyPercentiles"]["p50"]),
        seconds(&json["latencyPercentiles"]["p99"]),
    ))
}
