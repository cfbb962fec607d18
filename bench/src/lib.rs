//! What the bench's mock and clients share: the directive a request carries
//! to the mock, a small flag parser and percentiles.

pub mod report;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

/// How the mock should answer one request, read from a `[bench k=v …]`
/// marker in the request body. The marker sits in the user's message text,
/// which subgate carries across every translation, so it reaches the mock
/// whatever API the client spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Directive {
    /// Content chunks of a streamed answer (words of a whole one).
    pub chunks: Option<u32>,
    /// Pause between two content chunks.
    pub gap: Duration,
    /// Pause after the first content chunk (a stream held open).
    pub hold: Duration,
}

impl Directive {
    /// The directive in `body`, or the default when it has none.
    pub fn find(body: &[u8]) -> Self {
        const MARK: &[u8] = b"[bench";
        let Some(start) = body.windows(MARK.len()).position(|w| w == MARK) else {
            return Self::default();
        };
        let rest = &body[start + MARK.len()..];
        let end = rest.iter().position(|&b| b == b']').unwrap_or(rest.len());
        let mut directive = Self::default();
        for pair in String::from_utf8_lossy(&rest[..end]).split_whitespace() {
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            let Ok(number) = value.parse::<u64>() else {
                continue;
            };
            match key {
                "chunks" => directive.chunks = u32::try_from(number).ok(),
                "gap_ms" => directive.gap = Duration::from_millis(number),
                "hold_ms" => directive.hold = Duration::from_millis(number),
                _ => {}
            }
        }
        directive
    }

    /// The marker text that asks for this directive.
    pub fn marker(&self) -> String {
        let mut text = String::from("[bench");
        if let Some(chunks) = self.chunks {
            let _ = write!(text, " chunks={chunks}");
        }
        if !self.gap.is_zero() {
            let _ = write!(text, " gap_ms={}", self.gap.as_millis());
        }
        if !self.hold.is_zero() {
            let _ = write!(text, " hold_ms={}", self.hold.as_millis());
        }
        text.push(']');
        text
    }
}

/// `--key value` flags; anything after `--` is kept as the rest.
#[derive(Debug, Default)]
pub struct Flags {
    values: HashMap<String, String>,
    /// Arguments after `--`.
    pub rest: Vec<String>,
}

impl Flags {
    /// Reads `args` (without the program name and subcommand).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut flags = Self::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "--" {
                flags.rest = args.collect();
                break;
            }
            let Some(key) = arg.strip_prefix("--") else {
                return Err(format!("unexpected argument `{arg}`"));
            };
            let value = args
                .next()
                .ok_or_else(|| format!("`--{key}` needs a value"))?;
            flags.values.insert(key.to_owned(), value);
        }
        Ok(flags)
    }

    /// The value of `--key`, or `default`.
    pub fn get<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, String> {
        match self.values.get(key) {
            None => Ok(default),
            Some(value) => value
                .parse()
                .map_err(|_| format!("`--{key} {value}` is not valid")),
        }
    }

    /// The value of `--key`, which must be given.
    pub fn need(&self, key: &str) -> Result<String, String> {
        self.values
            .get(key)
            .cloned()
            .ok_or_else(|| format!("`--{key}` is required"))
    }
}

/// The `p`-th percentile (0–100) of `sorted` by nearest rank; 0 when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "a rank within the slice"
    )]
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_round_trips_through_its_marker() {
        let directive = Directive {
            chunks: Some(200),
            gap: Duration::from_millis(1),
            hold: Duration::from_mins(1),
        };
        let body = format!(
            r#"{{"messages":[{{"content":"Say hi. {}"}}]}}"#,
            directive.marker()
        );
        assert_eq!(Directive::find(body.as_bytes()), directive);
        assert_eq!(Directive::find(b"{}"), Directive::default());
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&values, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&values[..1], 99.0), Duration::from_millis(1));
    }
}
