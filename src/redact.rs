//! Keeping secrets out of errors: which strings are secret, and how a text from the wire is
//! quoted in an error (short, clean, withheld whole if it may hold a secret).

use crate::config::Settings;

/// Longest quoted text, in characters.
pub const EXCERPT_CHARS: usize = 200;

/// What a quoted text becomes when it may hold a secret.
pub const WITHHELD: &str = "<withheld: the text may contain a secret>";

/// What must never appear in an error: the API key, the Base64 credential (without its
/// `Basic ` prefix, so that it is found with or without it) and `token`, the access token at
/// hand (`""` for none).
pub fn secrets<'a>(settings: &'a Settings, token: &'a str) -> [&'a str; 3] {
    let basic = settings.basic_authorization.expose();
    [
        settings.api_key.expose(),
        basic.strip_prefix("Basic ").unwrap_or(basic),
        token,
    ]
}

/// Text from the wire made fit for an error: at most `EXCERPT_CHARS` characters, control
/// characters replaced, and withheld whole if it may hold a secret (a cut could still leave a
/// recognisable part of one).
pub fn quote(text: &str, secrets: &[&str]) -> String {
    if text.contains("access_token") || secrets.iter().any(|s| !s.is_empty() && text.contains(s)) {
        return WITHHELD.into();
    }
    text.chars()
        .take(EXCERPT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `quote` for a whole body. The body is also checked with JSON string escapes undone
/// (`\u0050`, `\"`, `\\` …), valid JSON or not, so an escaped secret is found too.
pub fn excerpt(body: &[u8], secrets: &[&str]) -> String {
    let text = String::from_utf8_lossy(body);
    if text.contains('\\') && quote(&unescape(&text), secrets) == WITHHELD {
        return WITHHELD.into();
    }
    quote(&text, secrets)
}

/// `text` with JSON-style escapes replaced by what they stand for; anything malformed is
/// kept as it is.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let rest = chars.as_str();
        let unicode = rest
            .strip_prefix('u')
            .and_then(|r| r.get(..4))
            .and_then(|hex| u32::from_str_radix(hex, 16).ok())
            .and_then(char::from_u32);
        match (chars.next(), unicode) {
            (Some('u'), Some(decoded)) => {
                out.push(decoded);
                chars.nth(3);
            }
            (Some(e @ ('"' | '\\' | '/')), _) => out.push(e),
            (Some('n'), _) => out.push('\n'),
            (Some('t'), _) => out.push('\t'),
            (Some(other), _) => {
                out.push('\\');
                out.push(other);
            }
            (None, _) => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests;
