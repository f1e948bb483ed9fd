//! Keeping secrets out of errors: which strings are secret, and how a text from the wire is
//! quoted in an error (short, clean, withheld whole if it may hold a secret).

use crate::ports::TransportError;
use crate::settings::Settings;

/// Longest quoted text, in characters.
pub const EXCERPT_CHARS: usize = 200;

/// What a quoted text becomes when it may hold a secret.
pub const WITHHELD: &str = "<withheld: the text may contain a secret>";

/// The shortest piece of a secret that withholds a text: an echo cut short (a gateway that
/// logs the first bytes of a header) still shows this much of a key, credential or token.
/// Shorter secrets withhold a text only whole.
pub const SECRET_PIECE: usize = 16;

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

/// A transport failure with the host's words quoted like any text from outside: they could
/// echo the request's credential or token.
pub fn transport_error(error: TransportError, secrets: &[&str]) -> TransportError {
    TransportError {
        detail: quote(&error.detail, secrets),
        ..error
    }
}

/// Text from outside (an answer, the host's error texts) made fit for an error: at most
/// `EXCERPT_CHARS` characters, control characters replaced, and withheld whole if it may
/// hold a secret (`may_hold_secret`; a cut could still leave a recognisable part of one).
pub fn quote(text: &str, secrets: &[&str]) -> String {
    if may_hold_secret(text, secrets) {
        return WITHHELD.into();
    }
    text.chars()
        .take(EXCERPT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `quote` for a whole body.
pub fn excerpt(body: &[u8], secrets: &[&str]) -> String {
    quote(&String::from_utf8_lossy(body), secrets)
}

/// Whether `text` holds `access_token`, or any of `secrets` whole or a `SECRET_PIECE`-long
/// piece of one, as written or with JSON string escapes (`\u0050`, `\"`, `\\` …) or
/// percent-escapes undone, valid JSON or URL or not.
pub fn may_hold_secret(text: &str, secrets: &[&str]) -> bool {
    let holds =
        |text: &str| text.contains("access_token") || secrets.iter().any(|s| holds_piece(text, s));
    holds(text)
        || (text.contains('\\') && holds(&unescape(text)))
        || (text.contains('%') && holds(&percent_decode(text)))
}

/// Whether `text` holds `secret` whole or, for a secret longer than `SECRET_PIECE` bytes, any
/// piece of it that long.
fn holds_piece(text: &str, secret: &str) -> bool {
    if secret.is_empty() {
        return false;
    }
    if secret.len() <= SECRET_PIECE {
        return text.contains(secret);
    }
    // Linear in the text (a body may be 64 KiB) without a hash table, which costs the
    // component 3.7 KB: a rolling hash of each window (Rabin–Karp) is looked up in a
    // 4096-bit filter of the secret's pieces, and only a hit is compared byte by byte.
    let mut filter = [0u64; 64];
    for hash in window_hashes(secret.as_bytes()) {
        let (word, bit) = filter_slot(hash);
        if let Some(word) = filter.get_mut(word) {
            *word |= bit;
        }
    }
    window_hashes(text.as_bytes())
        .zip(text.as_bytes().windows(SECRET_PIECE))
        .any(|(hash, window)| {
            let (word, bit) = filter_slot(hash);
            filter.get(word).is_some_and(|w| w & bit != 0)
                && secret
                    .as_bytes()
                    .windows(SECRET_PIECE)
                    .any(|piece| piece == window)
        })
}

/// Word and bit of a window's hash in the filter, from the hash's top 12 bits.
fn filter_slot(hash: u64) -> (usize, u64) {
    ((hash >> 58) as usize, 1 << ((hash >> 52) & 63))
}

/// A polynomial hash of every `SECRET_PIECE`-byte window of `bytes`, in order.
fn window_hashes(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    // The 64-bit FNV prime: odd, so no bit is lost by multiplying.
    const BASE: u64 = 0x0000_0100_0000_01b3;
    let gone_weight = BASE.wrapping_pow(SECRET_PIECE as u32);
    let leaving = std::iter::repeat_n(None, SECRET_PIECE).chain(bytes.iter().map(Some));
    let mut hash = 0u64;
    bytes
        .iter()
        .zip(leaving)
        .enumerate()
        .filter_map(move |(i, (&byte, gone))| {
            hash = hash.wrapping_mul(BASE).wrapping_add(u64::from(byte));
            if let Some(&gone) = gone {
                hash = hash.wrapping_sub(gone_weight.wrapping_mul(u64::from(gone)));
            }
            (i + 1 >= SECRET_PIECE).then_some(hash)
        })
}

/// `text` with `%XX` escapes decoded (as bytes, then lossily as UTF-8); anything malformed is
/// kept as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
