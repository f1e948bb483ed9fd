//! The shared protocol's stored formats: the store keys of one set of credentials, and the
//! entries written under them (the token, the lease, the cool-down with its error, the
//! released marker and the tombstone), each with its encoding and its checked decoding.
//! `Shared` (in `shared.rs`) decides when each is read and written.

use crate::error::{self, ApiError, Error, OAuthError, UnexpectedResponse};
use crate::origin::Origin;
use crate::redact;
use crate::retry;
use crate::secret::Secret;
use crate::settings::Settings;
use crate::token::SharedToken;
use crate::wire;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::time::Duration;
use zeroize::Zeroize;

/// The store keys of one set of credentials. Derived by SHA-256, so no key reveals the API
/// key, and different base URLs or client ids never share a token or a cool-down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    pub id: String,
    pub token: String,
    pub lease: String,
    /// The shared cool-down: until when no instance may send a token request.
    pub block: String,
}

impl Keys {
    pub fn new(settings: &Settings) -> Keys {
        let key_hash = Sha256::digest(settings.api_key.expose().as_bytes());
        let mut hasher = Sha256::new();
        hasher.update(settings.base.to_url().as_bytes());
        hasher.update([0]);
        hasher.update(settings.client_id.as_bytes());
        hasher.update([0]);
        hasher.update(key_hash);
        let id = hex(&hasher.finalize());
        Keys {
            token: format!("mangopay-auth/v1/token/{id}"),
            lease: format!("mangopay-auth/v1/lease/{id}"),
            block: format!("mangopay-auth/v1/cool-down/{id}"),
            id,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// The stored form. Owned strings: a value with a JSON escape (`\"`, `\\`, `\u…`) cannot be
/// borrowed from the bytes, and such a token must be shared like any other.
#[derive(Serialize, Deserialize)]
struct Entry {
    v: u32,
    id: String,
    access_token: String,
    token_type: String,
    expires_in: u64,
    expires_at_ms: u64,
}

impl SharedToken {
    pub fn encode(&self, id: &str) -> Secret {
        let entry = Entry {
            v: 1,
            id: id.to_owned(),
            access_token: self.access_token.expose().to_owned(),
            token_type: self.token_type.clone(),
            expires_in: self.expires_in,
            expires_at_ms: self.expires_at_ms,
        };
        let text = serde_json::to_string(&entry).unwrap_or_default();
        let Entry {
            mut access_token, ..
        } = entry;
        access_token.zeroize();
        Secret::new(text)
    }

    /// The token in `value` if it is ours (format, version, key id) and sane; `None` for a
    /// corrupt or foreign entry, which the caller then replaces.
    pub fn decode(value: &[u8], id: &str) -> Option<SharedToken> {
        let entry: Entry = serde_json::from_slice(value).ok()?;
        let header_safe = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic());
        let sane = entry.v == 1
            && entry.id == id
            && header_safe(&entry.access_token)
            && entry.token_type.eq_ignore_ascii_case("bearer")
            && (1..=wire::MAX_EXPIRES_IN).contains(&entry.expires_in);
        let Entry {
            mut access_token,
            token_type,
            expires_in,
            expires_at_ms,
            ..
        } = entry;
        if !sane {
            access_token.zeroize();
            return None;
        }
        Some(SharedToken {
            access_token: Secret::new(access_token),
            token_type,
            expires_in,
            expires_at_ms,
        })
    }
}

/// A lease as stored: a random holder, so that a holder releases only its own, and the
/// lease's own lifetime, so that a reader whose clock disagrees with the writer's still
/// sees it end.
#[derive(Serialize, Deserialize)]
struct LeaseEntry {
    v: u32,
    id: String,
    holder: String,
    ttl_ms: u64,
}

pub(super) fn lease_value(id: &str, ttl: Duration) -> Vec<u8> {
    let entry = LeaseEntry {
        v: 1,
        id: id.to_owned(),
        holder: format!("{:016x}", retry::jitter().to_bits()),
        ttl_ms: millis(ttl),
    };
    serde_json::to_vec(&entry).unwrap_or_default()
}

/// The lifetime of the lease in `value`, if it is one of ours and not released.
pub(super) fn lease_ttl_of(value: &[u8], id: &str) -> Option<Duration> {
    let entry: LeaseEntry = serde_json::from_slice(value).ok()?;
    (entry.v == 1 && entry.id == id).then(|| Duration::from_millis(entry.ttl_ms))
}

/// What replaces a lease its holder is done with: not a lease, so the key is free at once.
pub(super) fn released(id: &str) -> Vec<u8> {
    format!(r#"{{"v":1,"id":"{id}","released":true}}"#).into_bytes()
}

/// A shared cool-down as stored: until when no token request may be made, the typed error
/// to answer meanwhile (its texts already quoted: no secret in them), the strikes, so that
/// the doubling after repeated failures is shared too, and which token entry it was written
/// over, so that a token published since ends the doubling.
#[derive(Serialize, Deserialize)]
pub(super) struct BlockEntry {
    pub(super) v: u32,
    pub(super) id: String,
    pub(super) until_ms: u64,
    pub(super) pause_ms: u64,
    pub(super) strikes: u32,
    pub(super) error: StoredError,
    /// `TokenMark` of the token entry the writer read: 0 if it held no token. Absent from
    /// an older writer's entry: then no token is known to be newer.
    #[serde(default)]
    pub(super) over: Option<u64>,
}

/// The error a cool-down answers with (one of the token endpoint's answers, or a TLS fault),
/// flat: an internally tagged enum made serde link its buffering deserializer, 23 KB of the
/// store world for four cases.
#[derive(Serialize, Deserialize)]
pub(super) struct StoredError {
    /// The WIT case: `invalid-credentials`, `locked-out`, `oauth`, `unexpected-response`,
    /// `transport` (a TLS fault only).
    kind: String,
    /// 0 for `transport`.
    status: u16,
    /// `Message`, the OAuth `error`, the excerpt, or the host's words on a TLS fault (its
    /// hint is not stored: each reader writes its own for the base URL the keys stand for).
    text: String,
    /// `Type`, the OAuth `error_description`, or the transport kind (`tls`).
    detail: Option<String>,
    error_id: Option<String>,
    date: Option<f64>,
}

impl StoredError {
    pub(super) fn from_error(error: &Error) -> Option<StoredError> {
        let stored = |text: &str, detail: Option<&str>| StoredError {
            kind: error.case_name().to_owned(),
            status: error.status().unwrap_or_default(),
            text: text.to_owned(),
            detail: detail.map(str::to_owned),
            error_id: None,
            date: None,
        };
        Some(match error {
            Error::InvalidCredentials(e) => StoredError {
                error_id: e.id.clone(),
                date: e.date,
                ..stored(&e.message, Some(&e.error_type))
            },
            Error::LockedOut(e) | Error::OAuth(e) => stored(&e.error, e.description.as_deref()),
            Error::UnexpectedResponse(e) => stored(&e.excerpt, None),
            Error::Transport(e) if retry::is_tls_fault(error) => {
                stored(error::tls_host_words(&e.detail), Some("tls"))
            }
            _ => return None,
        })
    }

    /// The error, its texts quoted again with this instance's secrets: a value from the
    /// store is text from outside. `None` for a kind this version does not know.
    fn into_error(self, secrets: &[&str], base: &Origin) -> Option<Error> {
        let q = |text: String| redact::quote(&text, secrets);
        let status = self.status;
        let oauth = |text: String, detail: Option<String>| OAuthError {
            status,
            error: q(text),
            description: detail.map(q),
            retry_in: None,
        };
        Some(match self.kind.as_str() {
            "invalid-credentials" => Error::InvalidCredentials(ApiError {
                status,
                message: q(self.text),
                error_type: q(self.detail.unwrap_or_default()),
                id: self.error_id.map(q),
                date: self.date,
                retry_in: None,
            }),
            "locked-out" => Error::LockedOut(oauth(self.text, self.detail)),
            "oauth" => Error::OAuth(oauth(self.text, self.detail)),
            "unexpected-response" => Error::UnexpectedResponse(UnexpectedResponse {
                status,
                excerpt: q(self.text),
                retry_in: None,
            }),
            "transport" if self.detail.as_deref() == Some("tls") => {
                Error::Transport(error::tls_fault(base, &q(self.text)))
            }
            _ => return None,
        })
    }
}

/// A cool-down read from the store.
pub(super) struct SharedBlock {
    /// What is left of it at the read: to its writer's wall-clock end, but never more than
    /// its own pause (from when this instance first saw it, see `Shared::block_left`).
    pub(super) remaining: Duration,
    pub(super) pause: Duration,
    pub(super) strikes: u32,
    pub(super) error: Error,
    /// The token entry it was written over; `None` if its writer did not say.
    pub(super) over: Option<TokenMark>,
}

impl SharedBlock {
    pub(super) fn decode(
        value: &[u8],
        id: &str,
        wall_now: Duration,
        secrets: &[&str],
        base: &Origin,
    ) -> Option<Self> {
        let entry: BlockEntry = serde_json::from_slice(value).ok()?;
        if entry.v != 1 || entry.id != id {
            return None;
        }
        let pause = Duration::from_millis(entry.pause_ms);
        let remaining = Duration::from_millis(entry.until_ms)
            .saturating_sub(wall_now)
            .min(pause);
        Some(SharedBlock {
            remaining,
            pause,
            strikes: entry.strikes,
            error: entry.error.into_error(secrets, base)?,
            over: entry.over.map(TokenMark),
        })
    }

    /// The strikes that still count for a lead that read the token entry `token`: none once
    /// a token was published after this cool-down was written, as the fleet recovered since.
    pub(super) fn strikes_before(&self, token: &TokenMark) -> u32 {
        match &self.over {
            Some(over) if token.newer_than(over) => 0,
            _ => self.strikes,
        }
    }
}

/// Which token a lead found in the store's token entry: 64 bits of a digest of the entry if
/// it held one of ours (a token is never republished as the same bytes), 0 if it held none.
/// Tells whether a token was published since a cool-down, with no wall clock involved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenMark(pub(super) u64);

impl TokenMark {
    pub(super) fn of(entry: Option<&[u8]>, holds_token: bool) -> TokenMark {
        TokenMark(entry.filter(|_| holds_token).map_or(0, |entry| {
            let digest: [u8; 32] = Sha256::digest(entry).into();
            let [a, b, c, d, e, f, g, h, ..] = digest;
            // Never 0, which says "no token".
            u64::from_le_bytes([a, b, c, d, e, f, g, h]).max(1)
        }))
    }

    /// Whether a token was published after `earlier` was taken: this mark holds one, and
    /// not the one `earlier` held.
    pub fn newer_than(&self, earlier: &TokenMark) -> bool {
        self.0 != 0 && self.0 != earlier.0
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What replaces a refused token's entry: ours (version, key id), readable by an operator,
/// and not a token, so every instance ignores and replaces it.
pub(super) fn tombstone(id: &str) -> Vec<u8> {
    format!(r#"{{"v":1,"id":"{id}","rejected":true}}"#).into_bytes()
}
