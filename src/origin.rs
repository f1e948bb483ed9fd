//! URL origins: what a base URL may be and whether a request URL may carry the token.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Scheme, lower-cased host and effective port of an absolute URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    secure: bool,
    host: String,
    port: u16,
}

/// Why a URL was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum UrlError {
    /// Not an absolute `http(s)://` URL, or otherwise unusable; the text says why.
    Invalid(&'static str),
    /// `http://` to a host that is not loopback.
    Insecure,
}

impl Origin {
    /// Parses an absolute URL and returns its origin and its path-and-query (`/` if empty).
    pub fn parse(url: &str) -> Result<(Origin, String), UrlError> {
        // Every byte, the fragment's too: bytes hidden there would otherwise be returned to
        // the caller unchecked.
        if !url.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(UrlError::Invalid(
                "the URL holds a space, a control character or a non-ASCII byte",
            ));
        }
        // A fragment never reaches a server: a URL that has one is not a request URL.
        if url.contains('#') {
            return Err(UrlError::Invalid("a URL with a fragment (#) is refused"));
        }
        // The longest URL the `http` crate takes (u16::MAX - 1), which hosts built on it
        // would refuse too.
        if url.len() > 65_534 {
            return Err(UrlError::Invalid("not a valid URL"));
        }
        let (scheme, rest) = url
            .split_once("://")
            .ok_or(UrlError::Invalid("not an absolute URL"))?;
        let secure = if scheme.eq_ignore_ascii_case("https") {
            true
        } else if scheme.eq_ignore_ascii_case("http") {
            false
        } else {
            return Err(UrlError::Invalid("scheme must be https"));
        };
        let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        // RFC 3986 path and query characters, as the `http` crate (and so hyper) takes them:
        // `<`, `>` and `` ` `` are refused in the path, `"`, `<` and `>` in the query.
        let (only_path, query) = path.split_at(path.find('?').unwrap_or(path.len()));
        if only_path.contains(['<', '>', '`']) || query.contains(['"', '<', '>']) {
            return Err(UrlError::Invalid("not a valid URL"));
        }
        if authority.contains('@') {
            return Err(UrlError::Invalid("user-info in a URL is not allowed"));
        }
        // The origin decides where a token may go, so the authority is read strictly.
        let (host, port) = split_authority(authority)?;
        let port = port.unwrap_or(if secure { 443 } else { 80 });
        let origin = Origin { secure, host, port };
        if !origin.secure && !origin.is_loopback() {
            return Err(UrlError::Insecure);
        }
        let path = if path.is_empty() { "/" } else { path };
        Ok((origin, path.to_owned()))
    }

    /// Parses a base URL: an origin with no path beyond `/`, no query and no fragment.
    pub fn parse_base(url: &str) -> Result<Origin, UrlError> {
        let (origin, path) = Origin::parse(url)?;
        if path != "/" {
            return Err(UrlError::Invalid(
                "a base URL has no path or query (the component adds /v2.01/...)",
            ));
        }
        Ok(origin)
    }

    fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self.host == "[::1]"
            || self
                .host
                .parse::<Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// Whether this is a mutual-TLS host of Mangopay's (`https://api-mtls.…`): there a
    /// connection closed right after the handshake is the server refusing the client
    /// certificate (TLS 1.3 does so after it), not a network fault.
    pub fn is_mtls(&self) -> bool {
        self.secure && self.host.starts_with("api-mtls.")
    }

    /// Whether `authority` (`host[:port]`, as in a `Host` header) names this origin: host
    /// compared case-insensitively and IP literals canonically, a missing port taken as the
    /// scheme's default. Anything unparsable (user-info, a bad port) is not this origin.
    pub fn has_authority(&self, authority: &str) -> bool {
        split_authority(authority).is_ok_and(|(host, port)| {
            host == self.host && port.unwrap_or(self.default_port()) == self.port
        })
    }

    fn default_port(&self) -> u16 {
        if self.secure { 443 } else { 80 }
    }

    /// `host[:port]`, the port only when it is not the scheme's default.
    pub fn authority(&self) -> String {
        if self.port == self.default_port() {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Whether `url` is certainly on this origin, decided without parsing or allocating:
    /// it starts with `prefix` (this origin's `to_url()`), then `/` or `?`, then only URI
    /// characters. `false` means "parse it to know" (e.g. an explicit default port), never
    /// "foreign". The cached path of `authorize-request` runs this on every call.
    pub fn has_prefix_of(url: &str, prefix: &str) -> bool {
        // Longer URLs take the full parse, which refuses 64 KiB and more.
        const SHORTCUT_MAX: usize = 8 * 1024;
        url.len() <= SHORTCUT_MAX
            && url.strip_prefix(prefix).is_some_and(|rest| {
                matches!(rest.as_bytes().first(), Some(b'/' | b'?'))
                    && rest.bytes().all(|b| {
                        b.is_ascii_alphanumeric()
                            || matches!(
                                b,
                                b'-' | b'.'
                                    | b'_'
                                    | b'~'
                                    | b'!'
                                    | b'$'
                                    | b'&'
                                    | b'\''
                                    | b'('
                                    | b')'
                                    | b'*'
                                    | b'+'
                                    | b','
                                    | b';'
                                    | b'='
                                    | b':'
                                    | b'@'
                                    | b'/'
                                    | b'?'
                                    | b'%'
                            )
                    })
            })
    }

    /// `scheme://host[:port]`.
    pub fn to_url(&self) -> String {
        let scheme = if self.secure { "https" } else { "http" };
        format!("{scheme}://{}", self.authority())
    }
}

/// Host and explicit port of an authority without user-info. The host is lower-cased, and an
/// IP literal is written canonically (IPv6 as RFC 5952 in brackets, IPv4 dotted-decimal), so
/// that two spellings of one address are one origin.
fn split_authority(authority: &str) -> Result<(String, Option<u16>), UrlError> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (ip, after) = rest
                .split_once(']')
                .ok_or(UrlError::Invalid("unclosed IPv6 bracket"))?;
            let ip = ip
                .parse::<Ipv6Addr>()
                .map_err(|_| UrlError::Invalid("not an IPv6 address"))?;
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or(UrlError::Invalid("bad port"))?,
                ),
            };
            (bracketed(ip), port)
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host.to_ascii_lowercase(), Some(port)),
            None => (authority.to_ascii_lowercase(), None),
        },
    };
    let is_name = |h: &str| {
        !h.is_empty()
            && h.len() <= 253
            && h.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    };
    if !host.starts_with('[') && !is_name(&host) {
        return Err(UrlError::Invalid("not a valid host name"));
    }
    let host = match ends_in_number(&host) {
        true => parse_ipv4(&host)
            .ok_or(UrlError::Invalid("not a valid IPv4 address"))?
            .to_string(),
        false => host,
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or(UrlError::Invalid("port out of range"))?,
        ),
        Some(_) => return Err(UrlError::Invalid("bad port")),
    };
    Ok((host, port))
}

/// `[ip]`, written as RFC 5952 says: lower-case hex without leading zeros, the longest run of
/// two or more zero groups (the first of equal runs) as `::`. By hand: std's `Display` for
/// `Ipv6Addr` costs the component 2 KB more.
fn bracketed(ip: Ipv6Addr) -> String {
    let groups = ip.segments();
    // The longest run of zero groups: (start, length).
    let (mut best, mut run) = ((0, 0), (0, 0));
    for (i, group) in groups.iter().enumerate() {
        run = match *group {
            0 if run.1 > 0 => (run.0, run.1 + 1),
            0 => (i, 1),
            _ => (i, 0),
        };
        if run.1 > best.1 {
            best = run;
        }
    }
    let mut out = String::from("[");
    let mut i = 0;
    while let Some(group) = groups.get(i) {
        if best.1 >= 2 && i == best.0 {
            out.push_str("::");
            i += best.1;
            continue;
        }
        if !out.ends_with(['[', ':']) {
            out.push(':');
        }
        out.push_str(&format!("{group:x}"));
        i += 1;
    }
    out.push(']');
    out
}

/// Whether a host name is an IPv4 address as URL parsers (WHATWG) and `inet_aton` read it:
/// its last label is a number (decimal, or hexadecimal after `0x`).
fn ends_in_number(host: &str) -> bool {
    let last = host.rsplit('.').next().unwrap_or_default();
    let hex = last.strip_prefix("0x");
    !last.is_empty()
        && (last.bytes().all(|b| b.is_ascii_digit())
            || hex.is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit())))
}

/// An IPv4 address in any spelling clients accept (`127.1`, `0x7f.0.0.1`, `0177.0.0.1`,
/// `2130706433`), or `None` if it is not one.
fn parse_ipv4(host: &str) -> Option<Ipv4Addr> {
    let numbers = host
        .split('.')
        .map(ipv4_number)
        .collect::<Option<Vec<u64>>>()?;
    let (last, leading) = numbers.split_last()?;
    if leading.len() > 3 || leading.iter().any(|n| *n > 255) {
        return None;
    }
    // The last number fills the bytes the others left.
    let room = 8 * (4 - u32::try_from(leading.len()).ok()?);
    if last >> room != 0 {
        return None;
    }
    let mut value = *last;
    for (shift, n) in (1..=3).rev().zip(leading) {
        value |= n << (8 * shift);
    }
    u32::try_from(value).ok().map(Ipv4Addr::from)
}

/// One part of an IPv4 address: decimal, octal after a leading `0`, hexadecimal after `0x`.
fn ipv4_number(part: &str) -> Option<u64> {
    let (digits, radix) = match part.strip_prefix("0x") {
        Some(hex) => (hex, 16),
        None if part.len() > 1 => match part.strip_prefix('0') {
            Some(octal) => (octal, 8),
            None => (part, 10),
        },
        None => (part, 10),
    };
    if part.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    // Too many digits for an address part: refused before it could overflow.
    if digits.len() > 11 {
        return None;
    }
    match digits {
        "" => Some(0),
        _ => u64::from_str_radix(digits, radix).ok(),
    }
}

#[cfg(test)]
mod tests;
