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
        // http::Uri already refuses whitespace and control characters (CR, LF, NUL).
        let uri: http::Uri = url
            .parse()
            .map_err(|_| UrlError::Invalid("not a valid URL"))?;
        let secure = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("https") => true,
            Some("http") => false,
            Some(_) => return Err(UrlError::Invalid("scheme must be https")),
            None => return Err(UrlError::Invalid("not an absolute URL")),
        };
        let authority = uri.authority().ok_or(UrlError::Invalid("no host"))?;
        if authority.as_str().contains('@') {
            return Err(UrlError::Invalid("user-info in a URL is not allowed"));
        }
        // http::Uri is lenient about authorities (`a[::1]`, `host:99999`); the origin decides
        // where a token may go, so it is read strictly here.
        let (host, port) = split_authority(authority.as_str())?;
        let port = port.unwrap_or(if secure { 443 } else { 80 });
        let origin = Origin { secure, host, port };
        if !origin.secure && !origin.is_loopback() {
            return Err(UrlError::Insecure);
        }
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        Ok((origin, path.to_owned()))
    }

    /// Parses a base URL: an origin with no path beyond `/`, no query and no fragment.
    pub fn parse_base(url: &str) -> Result<Origin, UrlError> {
        if url.contains('#') {
            return Err(UrlError::Invalid("a base URL has no fragment"));
        }
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

    /// `host[:port]`, the port only when it is not the scheme's default.
    pub fn authority(&self) -> String {
        let default_port = if self.secure { 443 } else { 80 };
        if self.port == default_port {
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

/// Host (lower-cased; IPv6 in brackets) and explicit port of an authority without user-info.
fn split_authority(authority: &str) -> Result<(String, Option<u16>), UrlError> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (ip, after) = rest
                .split_once(']')
                .ok_or(UrlError::Invalid("unclosed IPv6 bracket"))?;
            ip.parse::<Ipv6Addr>()
                .map_err(|_| UrlError::Invalid("not an IPv6 address"))?;
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or(UrlError::Invalid("bad port"))?,
                ),
            };
            (format!("[{}]", ip.to_ascii_lowercase()), port)
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

#[cfg(test)]
mod tests;
