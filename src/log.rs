//! Operator log lines: one logfmt line per event an operator acts on (a token fetched, a
//! failed renewal, a cool-down, a lockout, a TLS fault, the store lost and back, a refused
//! token, an SCA answer), written to the component's stderr, which every platform captures.
//!
//! Lines have a fixed set of keys: `ts level component event client_id`, then those of
//! `Field`. Values are ours (names, numbers) or texts already quoted by `redact`: no line
//! holds a secret. Nothing is formatted on the cached path: events happen only on renewal,
//! failure and refusal, and a disabled level costs one comparison.

use std::fmt::Write as _;
use std::rc::Rc;
use std::time::Duration;

/// How much is logged: `MANGOPAY_AUTH_LOG`, default `warn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Off,
    Error,
    Warn,
    Info,
    Debug,
}

/// The variable that sets the level.
pub const LEVEL_VAR: &str = "MANGOPAY_AUTH_LOG";

impl Level {
    pub const DEFAULT: Level = Level::Warn;

    /// `off`, `error`, `warn`, `info` or `debug`, in any case; `None` for anything else.
    pub fn parse(text: &str) -> Option<Level> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "off" => Level::Off,
            "error" => Level::Error,
            "warn" => Level::Warn,
            "info" => Level::Info,
            "debug" => Level::Debug,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Level::Off => "off",
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

/// Where lines go (the component's stderr; a buffer in tests).
pub trait Sink {
    fn write_line(&self, line: &str);
}

/// A value of a line.
#[derive(Clone, Copy, Debug)]
pub enum Value<'a> {
    Text(&'a str),
    Number(u64),
    Flag(bool),
}

/// The keys a line may have after the fixed ones, in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// Where the token came from: `fresh-fetch`, `shared-store`.
    Source,
    /// The token's `expires_in`.
    LifetimeS,
    /// What is left of the token's life.
    SecondsLeft,
    /// How long the token request took, retries included.
    TookMs,
    /// Token requests in that fetch.
    Attempts,
    /// The typed error, as the WIT names its case (`invalid-credentials` ...).
    Error,
    /// The HTTP status of the answer.
    Status,
    /// How long no token request will be sent.
    RetryInS,
    /// When the next token request may be sent, in Unix seconds.
    NextTryUnix,
    /// Consecutive credential failures.
    Strikes,
    /// Whether the cool-down was shared through the store.
    Shared,
    /// A host's or store's text, already quoted.
    Detail,
}

impl Field {
    fn key(self) -> &'static str {
        match self {
            Field::Source => "source",
            Field::LifetimeS => "lifetime_s",
            Field::SecondsLeft => "seconds_left",
            Field::TookMs => "took_ms",
            Field::Attempts => "attempts",
            Field::Error => "error",
            Field::Status => "status",
            Field::RetryInS => "retry_in_s",
            Field::NextTryUnix => "next_try_unix",
            Field::Strikes => "strikes",
            Field::Shared => "shared",
            Field::Detail => "detail",
        }
    }
}

/// A client's logger: its level, its sink, and the client id every line names (a ClientId
/// is not a secret; the API key and tokens never reach a line).
#[derive(Clone)]
pub struct Logger {
    level: Level,
    sink: Option<Rc<dyn Sink>>,
    client_id: String,
}

impl Default for Logger {
    /// Logs nothing.
    fn default() -> Self {
        Logger {
            level: Level::Off,
            sink: None,
            client_id: String::new(),
        }
    }
}

impl Logger {
    pub fn new(level: Level, sink: Rc<dyn Sink>) -> Logger {
        Logger {
            level,
            sink: Some(sink),
            client_id: String::new(),
        }
    }

    /// The same logger, naming `client_id` in its lines.
    pub fn for_client(&self, client_id: &str) -> Logger {
        Logger {
            client_id: client_id.to_owned(),
            ..self.clone()
        }
    }

    pub fn enabled(&self, level: Level) -> bool {
        level != Level::Off && level <= self.level && self.sink.is_some()
    }

    /// Writes one line for `event` at `level` (wall time `wall`), if the level is enabled.
    pub fn event(&self, level: Level, event: &str, wall: Duration, fields: &[(Field, Value<'_>)]) {
        let Some(sink) = self.sink.as_ref().filter(|_| self.enabled(level)) else {
            return;
        };
        sink.write_line(&line(level, event, &self.client_id, wall, fields));
    }
}

/// The logfmt line.
pub fn line(
    level: Level,
    event: &str,
    client_id: &str,
    wall: Duration,
    fields: &[(Field, Value<'_>)],
) -> String {
    let mut out = format!(
        "ts={}.{:03} level={} component=mangopay-auth event={}",
        wall.as_secs(),
        wall.subsec_millis(),
        level.name(),
        event
    );
    push(&mut out, "client_id", Value::Text(client_id));
    for (field, value) in fields {
        push(&mut out, field.key(), *value);
    }
    out
}

fn push(out: &mut String, key: &str, value: Value<'_>) {
    let _ = match value {
        Value::Number(n) => write!(out, " {key}={n}"),
        Value::Flag(b) => write!(out, " {key}={b}"),
        Value::Text(text) => write!(out, " {key}={}", quoted(text)),
    };
}

/// A logfmt value: bare when it is a plain word, else in double quotes with `"` and `\`
/// escaped. Control characters become spaces, so a value never breaks the line.
fn quoted(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'=' | b'\\'));
    if plain {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests;
