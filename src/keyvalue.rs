//! `mangopay:auth/token-store` over a platform's `wasi:keyvalue` bucket: the logic of the
//! keyvalue adapter components, with the bucket behind a trait so it is tested natively.
//!
//! The platforms' stores have no time to live and, in `wasi:keyvalue@0.2.0-draft`, no
//! compare-and-swap; Spin's SQLite `cas` creates an absent key by an unconditional upsert. So:
//!
//! - Every value is stored in an [`Envelope`] with its wall-clock expiry and a random nonce:
//!   an expired entry reads as absent, and no two writes store the same bytes.
//! - `delete` writes a tombstone envelope instead of removing the key, so after its first
//!   creation a key is never physically absent again and every later write replaces a
//!   distinct, known value.
//! - Replacing a present value uses the store's `cas` where it has one (draft2): exact.
//! - Otherwise (draft, or creating an absent key) an election decides: each writer that read
//!   the same physical value increments one counter keyed by that value's hash; whoever gets
//!   `1 (mod ELECTION_SPAN)` reads the key again and writes only if it is unchanged, then
//!   deletes the counter. `increment` is atomic on every platform, so writers racing on one
//!   value get distinct numbers and one writes. The span lets a later writer take over when
//!   the elected one died between its increment and its write.
//!
//! Bound: a second writer wins only when more than `ELECTION_SPAN` increments land on the
//! same value before the elected writer's write (after an election the new value is live and
//! writers stop incrementing). Counters are left behind only by a writer that died mid-election.

use crate::ports::{StoreError, TokenStore};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::time::Duration;

/// The variable naming the bucket to open.
pub const BUCKET_VAR: &str = "MANGOPAY_AUTH_KV_BUCKET";

/// The bucket opened without `MANGOPAY_AUTH_KV_BUCKET`: Spin's default store label; wasmCloud
/// opens any identifier.
pub const DEFAULT_BUCKET: &str = "default";

/// Increments on one value's counter per elected writer: the takeover after a writer died
/// mid-election, and the most contenders an election keeps to one winner.
pub const ELECTION_SPAN: i64 = 64;

const MAGIC: &str = "mpkv1 ";

/// The bucket label from the variable's value: trimmed, the default when unset or blank.
pub fn bucket_label(value: Option<&str>) -> &str {
    match value.map(str::trim) {
        Some(label) if !label.is_empty() => label,
        _ => DEFAULT_BUCKET,
    }
}

/// A stored value with its expiry, since the platforms' stores have none.
///
/// Format: `mpkv1 <expires-at-ms> <nonce, 16 hex digits> <value bytes>`. A tombstone (a
/// deleted key) has expiry 0 and no value.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    pub expires_at_ms: u64,
    pub nonce: u64,
    pub value: Vec<u8>,
}

impl std::fmt::Debug for Envelope {
    // The value may be a bearer token: only its length is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("expires_at_ms", &self.expires_at_ms)
            .field("nonce", &self.nonce)
            .field("value_bytes", &self.value.len())
            .finish()
    }
}

impl Envelope {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::with_capacity(MAGIC.len() + 40);
        out.push_str(MAGIC);
        let _ = write!(out, "{} {:016x} ", self.expires_at_ms, self.nonce);
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.value);
        bytes
    }

    /// `None` for anything not written by an adapter: read as absent, and replaced.
    pub fn decode(bytes: &[u8]) -> Option<Envelope> {
        let rest = bytes.strip_prefix(MAGIC.as_bytes())?;
        let space = rest.iter().position(|b| *b == b' ')?;
        let (expiry, rest) = rest.split_at(space);
        let rest = rest.get(1..)?;
        let (nonce, rest) = (rest.get(..16)?, rest.get(16..)?);
        let value = rest.strip_prefix(b" ")?;
        let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
        if !digits(expiry) || expiry.len() > 20 {
            return None;
        }
        Some(Envelope {
            expires_at_ms: std::str::from_utf8(expiry).ok()?.parse().ok()?,
            nonce: u64::from_str_radix(std::str::from_utf8(nonce).ok()?, 16).ok()?,
            value: value.to_vec(),
        })
    }

    /// The value, while it has not expired at wall time `now_ms`.
    pub fn live(self, now_ms: u64) -> Option<Vec<u8>> {
        (self.expires_at_ms > now_ms).then_some(self.value)
    }
}

/// The value a key holds at wall time `now_ms`, reading its physical bytes: none when absent,
/// expired, a tombstone or not an envelope.
pub fn logical(physical: Option<&[u8]>, now_ms: u64) -> Option<Vec<u8>> {
    physical
        .and_then(Envelope::decode)
        .and_then(|e| e.live(now_ms))
}

/// A failed store operation, in the platform's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvError(pub String);

impl KvError {
    /// `wasi:keyvalue`'s `no-such-store` for bucket `label`.
    pub fn no_such_store(label: &str) -> KvError {
        KvError(format!(
            "wasi:keyvalue: no store `{label}` (Spin: list it in the component's key_value_stores; \
             or set {BUCKET_VAR})"
        ))
    }

    /// `wasi:keyvalue`'s `access-denied` for bucket `label`.
    pub fn access_denied(label: &str) -> KvError {
        KvError(format!(
            "wasi:keyvalue: access to store `{label}` denied (Spin: add key_value_stores = \
             [\"{label}\"] to the component in spin.toml)"
        ))
    }

    /// Any other failure the platform reported.
    pub fn other(detail: &str) -> KvError {
        KvError(format!("wasi:keyvalue: {detail}"))
    }
}

/// A key's value as read, and the `cas` handle that remembers it (draft2 only).
pub type Read<C> = (Option<Vec<u8>>, Option<C>);

/// What the adapter needs from the platform: one open bucket of `wasi:keyvalue`, the wall
/// clock and randomness.
pub trait Bucket {
    /// A `cas` handle of draft2; draft has none.
    type Cas;
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError>;
    fn delete(&self, key: &str) -> Result<(), KvError>;
    /// Atomically adds 1 and returns the new value (an absent key counts as 0).
    fn increment(&self, key: &str) -> Result<i64, KvError>;
    /// The key's value, with a `cas` handle remembering it when the store has one
    /// (draft2: `cas.new` then `current`); without one, a plain `get`.
    fn read(&self, key: &str) -> Result<Read<Self::Cas>, KvError>;
    /// Writes through the handle if the key still holds what it read: `Ok(false)` when
    /// another writer came first (`cas-failed`).
    fn swap(&self, cas: Self::Cas, value: &[u8]) -> Result<bool, KvError>;
    /// Wall time in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    fn nonce(&self) -> u64;
}

/// The counter deciding which writer replaces `physical` at `key`.
pub fn election_key(key: &str, physical: Option<&[u8]>) -> String {
    match physical {
        None => format!("{key}/election/absent"),
        Some(bytes) => {
            let digest = Sha256::digest(bytes);
            let hex = digest.iter().fold(String::new(), |mut out, b| {
                let _ = write!(out, "{b:02x}");
                out
            });
            format!("{key}/election/{hex}")
        }
    }
}

/// `mangopay:auth/token-store` over a [`Bucket`].
pub struct KeyValueStore<B> {
    bucket: B,
}

impl<B: Bucket> KeyValueStore<B> {
    pub fn new(bucket: B) -> Self {
        KeyValueStore { bucket }
    }

    pub fn bucket(&self) -> &B {
        &self.bucket
    }

    /// `token-store.get`: the live value, or none.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let physical = self.bucket.get(key)?;
        Ok(logical(physical.as_deref(), self.bucket.now_ms()))
    }

    /// `token-store.compare-and-swap`: sets `key` to `value` for `ttl` if its live value is
    /// `expected` (none: absent, expired or a tombstone).
    pub fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, KvError> {
        let now = self.bucket.now_ms();
        let (physical, cas) = self.bucket.read(key)?;
        if logical(physical.as_deref(), now).as_deref() != expected {
            return Ok(false);
        }
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let envelope = Envelope {
            expires_at_ms: now.saturating_add(ttl_ms),
            nonce: self.bucket.nonce(),
            value: value.to_vec(),
        };
        self.replace(key, physical.as_deref(), cas, &envelope.encode())
    }

    /// `token-store.delete`: a tombstone, so the key is never physically absent again.
    pub fn delete(&self, key: &str) -> Result<(), KvError> {
        let tombstone = Envelope {
            expires_at_ms: 0,
            nonce: self.bucket.nonce(),
            value: Vec::new(),
        };
        self.bucket.set(key, &tombstone.encode())
    }

    /// Writes `new` over `physical`, the bytes read with `cas`, if no other writer did first.
    fn replace(
        &self,
        key: &str,
        physical: Option<&[u8]>,
        cas: Option<B::Cas>,
        new: &[u8],
    ) -> Result<bool, KvError> {
        // A store's own compare-and-swap is exact on a present value. On an absent one Spin's
        // SQLite store upserts unconditionally, so creation goes through the election.
        if let (Some(cas), Some(_)) = (cas, physical) {
            return self.bucket.swap(cas, new);
        }
        let election = election_key(key, physical);
        let ticket = self.bucket.increment(&election)?;
        if ticket.saturating_sub(1).rem_euclid(ELECTION_SPAN) != 0 {
            return Ok(false);
        }
        // Elected: still the value the election was about? A latecomer that incremented
        // after the winner wrote and deleted the counter finds a new value here.
        let written = self.bucket.read(key).and_then(|(again, cas)| {
            if again.as_deref() != physical {
                return Ok(false);
            }
            match cas {
                Some(cas) => self.bucket.swap(cas, new),
                None => self.bucket.set(key, new).map(|()| true),
            }
        });
        // Whatever happened, store errors included: a counter left behind would make the
        // next writer on this value lose its election until the span wraps.
        let _ = self.bucket.delete(&election);
        written
    }
}

impl<B: Bucket> TokenStore for KeyValueStore<B> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        KeyValueStore::get(self, key).map_err(|e| StoreError(e.0))
    }

    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        KeyValueStore::compare_and_swap(self, key, expected, value, ttl)
            .map_err(|e| StoreError(e.0))
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        KeyValueStore::delete(self, key).map_err(|e| StoreError(e.0))
    }
}

/// The Spin application variables the Spin adapter maps onto `MANGOPAY_*` settings
/// (Spin variable names are lowercase).
pub const SPIN_VARIABLES: [(&str, &str); 7] = [
    ("mangopay_client_id", "MANGOPAY_CLIENT_ID"),
    ("mangopay_api_key", "MANGOPAY_API_KEY"),
    ("mangopay_environment", "MANGOPAY_ENVIRONMENT"),
    ("mangopay_base_url", "MANGOPAY_BASE_URL"),
    ("mangopay_auth_kv_bucket", BUCKET_VAR),
    ("mangopay_auth_log", crate::log::LEVEL_VAR),
    (
        "mangopay_auth_resend_body_max",
        crate::middleware::RESEND_BODY_MAX_VAR,
    ),
];

/// The environment the auth component sees on Spin: the host's, with each `MANGOPAY_*`
/// setting replaced by its application variable when `variable` has one (`wasi:config`).
pub fn spin_environment(
    host: Vec<(String, String)>,
    variable: impl Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    let found: Vec<(String, String)> = SPIN_VARIABLES
        .iter()
        .filter_map(|(spin, env)| variable(spin).map(|value| ((*env).to_owned(), value)))
        .collect();
    let mut env: Vec<(String, String)> = host
        .into_iter()
        .filter(|(name, _)| !found.iter().any(|(set, _)| set == name))
        .collect();
    env.extend(found);
    env
}

#[cfg(test)]
mod tests;
