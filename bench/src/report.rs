//! Turns the raw figures `run.sh` collects (`key value` lines) into the
//! markdown table: non-streamed latency and CPU, streams, memory and
//! start-up, and the headline ratios against the targets.

use std::collections::HashMap;
use std::fmt::Write as _;

/// The paths measured, as `run.sh` names them, with their labels.
const PATHS: [(&str, &str); 6] = [
    ("direct_oai", "direct to the mock (Chat Completions)"),
    ("direct_ant", "direct to the mock (Messages)"),
    ("nginx", "nginx pass-through (Chat Completions)"),
    ("sg_pass", "subgate pass-through (Chat → Chat)"),
    (
        "sg_a2o",
        "subgate translated (Messages client → Chat upstream)",
    ),
    (
        "sg_o2a",
        "subgate translated (Chat client → Messages upstream)",
    ),
];
const CONCURRENCY: [u32; 3] = [1, 16, 64];
/// The concurrency whose CPU per request the headline compares.
const HEADLINE_CONCURRENCY: u32 = 16;

struct Raw(HashMap<String, String>);

impl Raw {
    fn read(path: &str) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|error| format!("{path}: {error}"))?;
        Ok(Self(
            text.lines()
                .filter_map(|line| line.split_once(' '))
                .map(|(key, value)| (key.to_owned(), value.trim().to_owned()))
                .collect(),
        ))
    }

    fn num(&self, key: &str) -> f64 {
        self.0
            .get(key)
            .and_then(|value| value.parse().ok())
            .unwrap_or(f64::NAN)
    }

    fn text(&self, key: &str) -> &str {
        self.0.get(key).map_or("?", String::as_str)
    }

    /// Proxy CPU µs per non-streamed request of `path` at `concurrency`.
    fn cpu_per_request(&self, path: &str, concurrency: u32) -> f64 {
        let prefix = format!("ns.{path}.c{concurrency}");
        self.num(&format!("{prefix}.cpu_us")) / self.num(&format!("{prefix}.count"))
    }

    /// Proxy CPU µs per content chunk over the streams of `set` (`st`:
    /// paced, `st_burst`: no gaps) of `path`, the streams' own set-up
    /// included.
    fn cpu_per_chunk(&self, set: &str, path: &str) -> f64 {
        self.num(&format!("{set}.{path}.cpu_us"))
            / (self.num(&format!("{set}.{path}.ok")) * self.num(&format!("{set}.chunks")))
    }

    /// The same, less the cost of a short stream: what one more chunk
    /// costs.
    fn marginal_per_chunk(&self, path: &str) -> f64 {
        let long = self.num(&format!("st.{path}.cpu_us")) / self.num(&format!("st.{path}.ok"));
        let short =
            self.num(&format!("st_short.{path}.cpu_us")) / self.num(&format!("st_short.{path}.ok"));
        (long - short) / (self.num("st.chunks") - self.num("st_short.chunks"))
    }

    fn added_p50(&self, path: &str, base: &str) -> f64 {
        self.num(&format!("ns.{path}.c1.p50_us")) - self.num(&format!("ns.{base}.c1.p50_us"))
    }

    fn held_per_stream_kib(&self, process: &str) -> f64 {
        (self.num(&format!("rss.{process}.held_kib"))
            - self.num(&format!("rss.{process}.before_hold_kib")))
            / self.num(&format!("hold.{process}.ready"))
    }
}

fn is_proxy(path: &str) -> bool {
    !path.starts_with("direct")
}

/// `value` with `decimals`, or `–` when it was not measured.
fn fmt(value: f64, decimals: usize) -> String {
    if value.is_finite() {
        format!("{value:.decimals$}")
    } else {
        "–".to_owned()
    }
}

fn verdict(value: f64, limit: f64) -> &'static str {
    if !value.is_finite() {
        "n/a"
    } else if value <= limit {
        "pass"
    } else {
        "miss"
    }
}

/// Reads `RAW`, writes the markdown to `OUT` and returns it.
pub fn run(args: &[String]) -> Result<String, String> {
    let [raw, out] = args else {
        return Err("usage: bench-client report RAW OUT.md".to_owned());
    };
    let raw = Raw::read(raw)?;
    let mut markdown = String::new();
    render(&raw, &mut markdown).map_err(|error| error.to_string())?;
    std::fs::write(out, &markdown).map_err(|error| format!("{out}: {error}"))?;
    Ok(markdown)
}

fn render(raw: &Raw, out: &mut String) -> std::fmt::Result {
    writeln!(out, "# subgate overhead benchmark\n")?;
    writeln!(
        out,
        "{} · {} · subgate {} · {} · oha {} · log level `{}` · {} s per load run · load average {}\n",
        raw.text("meta.date"),
        raw.text("meta.cpu"),
        raw.text("meta.commit"),
        raw.text("meta.nginx"),
        raw.text("meta.oha"),
        raw.text("meta.log_level"),
        raw.text("meta.seconds"),
        raw.text("meta.load"),
    )?;
    writeln!(
        out,
        "subgate and nginx (one worker) pinned to core 0; the mock, oha and the stream client to core 1. \
         CPU is the proxy process's user + system time from `/proc/PID/stat` over the run.\n"
    )?;
    non_streamed(raw, out)?;
    streams(raw, out)?;
    memory(raw, out)?;
    headline(raw, out)
}

fn non_streamed(raw: &Raw, out: &mut String) -> std::fmt::Result {
    writeln!(out, "## Non-streamed requests\n")?;
    writeln!(
        out,
        "| path | conc. | p50 µs | p99 µs | req/s | proxy CPU µs/req |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|")?;
    for (path, label) in PATHS {
        for concurrency in CONCURRENCY {
            let key = |field: &str| raw.num(&format!("ns.{path}.c{concurrency}.{field}"));
            let cpu = if is_proxy(path) {
                fmt(raw.cpu_per_request(path, concurrency), 1)
            } else {
                "–".to_owned()
            };
            let errors = key("errors") + key("count") - key("ok");
            let note = if errors > 0.0 {
                format!(" ({errors} failed)")
            } else {
                String::new()
            };
            writeln!(
                out,
                "| {label}{note} | {concurrency} | {} | {} | {} | {cpu} |",
                fmt(key("p50_us"), 0),
                fmt(key("p99_us"), 0),
                fmt(key("rps"), 0),
            )?;
        }
    }
    writeln!(out)
}

fn streams(raw: &Raw, out: &mut String) -> std::fmt::Result {
    writeln!(
        out,
        "## Streams\n\n{} streams of {} content chunks each, {} at a time. *Paced*: {} ms or more \
         between chunks, so each reaches the proxy on its own, as from a real model; *marginal* \
         subtracts the CPU of {}-chunk streams, leaving what one more chunk costs. *Burst*: no \
         pause, so chunks arrive many to a read ({} streams, so that /proc's 10 ms CPU ticks \
         count).\n",
        raw.text("st.streams"),
        raw.text("st.chunks"),
        raw.text("st.concurrency"),
        raw.text("st.gap_ms"),
        raw.text("st_short.chunks"),
        raw.text("st_burst.streams"),
    )?;
    writeln!(
        out,
        "| path | ok (paced/burst) | events/stream | first token p50 µs | p99 µs | paced: whole stream p50 ms | p99 ms | proxy CPU µs/chunk | marginal | burst: whole stream p50 ms | proxy CPU µs/chunk |"
    )?;
    writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )?;
    for (path, label) in PATHS {
        let key = |field: &str| raw.num(&format!("st.{path}.{field}"));
        let burst = |field: &str| raw.num(&format!("st_burst.{path}.{field}"));
        let (paced, marginal, bursty) = if is_proxy(path) {
            (
                fmt(raw.cpu_per_chunk("st", path), 2),
                fmt(raw.marginal_per_chunk(path), 2),
                fmt(raw.cpu_per_chunk("st_burst", path), 2),
            )
        } else {
            ("–".to_owned(), "–".to_owned(), "–".to_owned())
        };
        writeln!(
            out,
            "| {label} | {}/{} | {} | {} | {} | {} | {} | {paced} | {marginal} | {} | {bursty} |",
            fmt(key("ok"), 0),
            fmt(burst("ok"), 0),
            fmt(key("events"), 0),
            fmt(key("ttft_p50_us"), 0),
            fmt(key("ttft_p99_us"), 0),
            fmt(key("total_p50_us") / 1000.0, 1),
            fmt(key("total_p99_us") / 1000.0, 1),
            fmt(burst("total_p50_us") / 1000.0, 1),
        )?;
    }
    writeln!(out)
}

fn memory(raw: &Raw, out: &mut String) -> std::fmt::Result {
    writeln!(out, "## Memory and start-up\n")?;
    writeln!(out, "| | subgate | nginx (master + worker) |")?;
    writeln!(out, "|---|---:|---:|")?;
    for (label, key) in [
        ("RSS idle after start, MiB", "idle_kib"),
        ("RSS after the load, MiB", "after_load_kib"),
    ] {
        writeln!(
            out,
            "| {label} | {} | {} |",
            fmt(raw.num(&format!("rss.subgate.{key}")) / 1024.0, 1),
            fmt(raw.num(&format!("rss.nginx.{key}")) / 1024.0, 1)
        )?;
    }
    writeln!(
        out,
        "| RSS per held-open stream, KiB ({} / {} held) | {} | {} |",
        raw.text("hold.subgate.ready"),
        raw.text("hold.nginx.ready"),
        fmt(raw.held_per_stream_kib("subgate"), 1),
        fmt(raw.held_per_stream_kib("nginx"), 1)
    )?;
    writeln!(
        out,
        "| start-up to the first 200 from `/healthz`, ms (median of {}) | {} | {} |\n",
        raw.text("startup.subgate.runs"),
        fmt(raw.num("startup.subgate.p50_us") / 1000.0, 1),
        fmt(raw.num("startup.nginx.p50_us") / 1000.0, 1)
    )
}

fn headline(raw: &Raw, out: &mut String) -> std::fmt::Result {
    writeln!(out, "## Against the targets\n")?;
    writeln!(
        out,
        "| figure | subgate | nginx | subgate ÷ nginx | target | |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---|---|")?;
    let nginx_added = raw.added_p50("nginx", "direct_oai");
    for (label, path, base) in [
        (
            "added p50 at c=1, pass-through, µs",
            "sg_pass",
            "direct_oai",
        ),
        (
            "added p50 at c=1, Messages → Chat, µs",
            "sg_a2o",
            "direct_oai",
        ),
        (
            "added p50 at c=1, Chat → Messages, µs",
            "sg_o2a",
            "direct_ant",
        ),
    ] {
        let added = raw.added_p50(path, base);
        let ratio = added / nginx_added;
        let (target, result) = if path == "sg_pass" {
            ("≤ 1.1× nginx", verdict(ratio, 1.1))
        } else {
            ("–", "")
        };
        writeln!(
            out,
            "| {label} | {} | {} | {} | {target} | {result} |",
            fmt(added, 0),
            fmt(nginx_added, 0),
            fmt(ratio, 2)
        )?;
    }
    headline_cpu(raw, out)?;
    headline_memory(raw, out)
}

fn headline_cpu(raw: &Raw, out: &mut String) -> std::fmt::Result {
    let c = HEADLINE_CONCURRENCY;
    let nginx_cpu = raw.cpu_per_request("nginx", c);
    for (label, path, limit) in [
        ("pass-through", "sg_pass", 1.0),
        ("Messages → Chat", "sg_a2o", 1.5),
        ("Chat → Messages", "sg_o2a", 1.5),
    ] {
        let cpu = raw.cpu_per_request(path, c);
        writeln!(
            out,
            "| CPU per request at c={c}, {label}, µs | {} | {} | {} | ≤ {limit}× nginx | {} |",
            fmt(cpu, 1),
            fmt(nginx_cpu, 1),
            fmt(cpu / nginx_cpu, 2),
            verdict(cpu / nginx_cpu, limit)
        )?;
    }
    for (set, pacing) in [("st", "paced"), ("st_burst", "burst")] {
        let nginx_chunk = raw.cpu_per_chunk(set, "nginx");
        for (label, path) in [
            ("pass-through", "sg_pass"),
            ("Messages → Chat", "sg_a2o"),
            ("Chat → Messages", "sg_o2a"),
        ] {
            let cpu = raw.cpu_per_chunk(set, path);
            let (target, result) = if path == "sg_pass" {
                ("–", "")
            } else {
                ("≤ 2 µs", verdict(cpu, 2.0))
            };
            writeln!(
                out,
                "| CPU per streamed chunk, {pacing}, {label}, µs | {} | {} | {} | {target} | {result} |",
                fmt(cpu, 2),
                fmt(nginx_chunk, 2),
                fmt(cpu / nginx_chunk, 2)
            )?;
        }
    }
    Ok(())
}

fn headline_memory(raw: &Raw, out: &mut String) -> std::fmt::Result {
    let idle = raw.num("rss.subgate.idle_kib") / 1024.0;
    let per_stream = raw.held_per_stream_kib("subgate");
    let startup = raw.num("startup.subgate.p50_us") / 1000.0;
    let rows = [
        (
            "idle RSS, MiB",
            idle,
            raw.num("rss.nginx.idle_kib") / 1024.0,
            "≤ 15 MiB",
            15.0,
            1,
        ),
        (
            "RSS per held stream, KiB",
            per_stream,
            raw.held_per_stream_kib("nginx"),
            "≤ 16 KiB",
            16.0,
            1,
        ),
        (
            "start-up, ms",
            startup,
            raw.num("startup.nginx.p50_us") / 1000.0,
            "≤ 50 ms",
            50.0,
            1,
        ),
    ];
    for (label, value, nginx, target, limit, decimals) in rows {
        writeln!(
            out,
            "| {label} | {} | {} | {} | {target} | {} |",
            fmt(value, decimals),
            fmt(nginx, decimals),
            fmt(value / nginx, 2),
            verdict(value, limit)
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_verdicts_come_from_the_raw_figures() {
        let raw = Raw([
            ("ns.direct_oai.c1.p50_us", "100"),
            ("ns.nginx.c1.p50_us", "140"),
            ("ns.sg_pass.c1.p50_us", "150"),
            ("ns.nginx.c16.cpu_us", "1000"),
            ("ns.nginx.c16.count", "100"),
            ("ns.sg_pass.c16.cpu_us", "900"),
            ("ns.sg_pass.c16.count", "100"),
            ("st.chunks", "200"),
            ("st_short.chunks", "10"),
            ("st.sg_a2o.cpu_us", "4000"),
            ("st.sg_a2o.ok", "10"),
            ("st_short.sg_a2o.cpu_us", "400"),
            ("st_short.sg_a2o.ok", "10"),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect());
        assert!((raw.added_p50("sg_pass", "direct_oai") - 50.0).abs() < 1e-9);
        assert!((raw.cpu_per_request("sg_pass", 16) - 9.0).abs() < 1e-9);
        assert!((raw.cpu_per_chunk("st", "sg_a2o") - 2.0).abs() < 1e-9);
        assert!((raw.marginal_per_chunk("sg_a2o") - 360.0 / 190.0).abs() < 1e-9);
        assert_eq!(verdict(50.0 / 40.0, 1.1), "miss");
        assert_eq!(verdict(0.9, 1.0), "pass");
        assert_eq!(verdict(f64::NAN, 1.0), "n/a");
        let mut out = String::new();
        render(&raw, &mut out).unwrap();
        assert!(out.contains("| CPU per request at c=16, pass-through, µs | 9.0 | 10.0 | 0.90 | ≤ 1× nginx | pass |"), "{out}");
    }
}
