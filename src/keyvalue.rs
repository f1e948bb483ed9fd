//! `mangopay:auth/token-store` over a platform's `wasi:keyvalue` bucket: the logic of the
//! keyvalue adapter components, with the bucket behind a trait so it is tested natively.
//!
//! The platforms' stores have no time to live, and their atomics cannot be trusted as they
//! ship: Spin's Redis `swap` reports `cas-failed` for every write it made and success for an
//! `EXEC` it aborted; Spin's SQLite `swap` upserts blindly on an absent key; wasmCloud's NATS
//! `increment` on an absent key is a plain put (every racer is "first") and a conflict on a
//! present one is an error. So the adapter uses no atomic at all, only `get` and `set`,
//! which every backend does exactly, and the monotonic clock:
//!
//! - Every value is stored in an [`Envelope`] with its wall-clock expiry and a random nonce:
//!   an expired entry reads as absent, and no two writes store the same bytes.
//! - `delete` writes a tombstone envelope instead of removing the key: no delete markers or
//!   counters pile up (a client leaves exactly its three keys), and a key once written is
//!   never physically absent again.
//! - A compare-and-swap is settled by what the store holds afterwards, not by any answer:
//!   read the key (the check), write the new envelope, wait [`SETTLE`], read it back. The
//!   writer won if its own envelope is still there and its check and write took at most
//!   [`SETTLE`] by the monotonic clock. Two writers cannot both win: the later write B lands
//!   after the earlier winner A read its own value back, so more than `SETTLE` after A's
//!   write; B's check began at most `SETTLE` before B's write ended, so after A's write, and
//!   saw A's value (or a later one), not the expected one, and B did not write. This holds
//!   for any store whose `get` sees every `set` that returned before it began; it needs no
//!   bound on the store's latency. A writer that took longer than `SETTLE` (a stalled store)
//!   loses even if its value stayed: the caller looks again, and a lease left that way
//!   ends by its own time to live.

use crate::ports::{Clock, StoreError, TokenStore};
use std::fmt::Write as _;
use std::time::Duration;

/// The variable naming the bucket to open.
pub const BUCKET_VAR: &str = "MANGOPAY_AUTH_KV_BUCKET";

/// The bucket opened without `MANGOPAY_AUTH_KV_BUCKET`: Spin's default store label; wasmCloud
/// opens any identifier.
pub const DEFAULT_BUCKET: &str = "default";

/// How long a writer waits before reading its write back, and the longest its check and
/// write may take: the price of a compare-and-swap on a store with no trustworthy atomic,
/// paid by the lease holder only (three writes a renewal), never on a cached call.
pub const SETTLE: Duration = Duration::from_millis(50);

const MAGIC: &str = "mpkv1 ";

/// The bucket label from the variable's value, trimmed: the default when unset. Set but
/// empty selects the bucket `""`, the only one `wasmtime serve -S keyvalue` opens.
pub fn bucket_label(value: Option<&str>) -> &str {
    match value {
        Some(label) => label.trim(),
        None => DEFAULT_BUCKET,
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
             wasmtime serve -S keyvalue opens only the store \"\": set {BUCKET_VAR}= empty; \
             otherwise set {BUCKET_VAR} to a store the host opens)"
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

/// What the adapter needs from the platform besides its clocks: one open bucket of
/// `wasi:keyvalue` (its `get` and `set`, nothing atomic) and randomness.
pub trait Bucket {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError>;
    fn nonce(&self) -> u64;
}

/// `mangopay:auth/token-store` over a [`Bucket`]; the clock's monotonic time settles writes,
/// its wall time dates the entries.
pub struct KeyValueStore<B, C> {
    bucket: B,
    clock: C,
    settle: Duration,
}

impl<B: Bucket, C: Clock> KeyValueStore<B, C> {
    pub fn new(bucket: B, clock: C) -> Self {
        KeyValueStore::with_settle(bucket, clock, SETTLE)
    }

    /// The same with another settling time (tests).
    pub fn with_settle(bucket: B, clock: C, settle: Duration) -> Self {
        KeyValueStore {
            bucket,
            clock,
            settle,
        }
    }

    /// Wall time in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64 {
        u64::try_from(self.clock.wall().as_millis()).unwrap_or(u64::MAX)
    }

    /// `token-store.get`: the live value, or none.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let physical = self.bucket.get(key)?;
        Ok(logical(physical.as_deref(), self.now_ms()))
    }

    /// `token-store.compare-and-swap`: sets `key` to `value` for `ttl` if its live value is
    /// `expected` (none: absent, expired or a tombstone). `Ok(false)` for a lost race: only a
    /// store that did not answer is an error.
    pub fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, KvError> {
        let began = self.clock.monotonic();
        let now = self.now_ms();
        let physical = self.bucket.get(key)?;
        if logical(physical.as_deref(), now).as_deref() != expected {
            return Ok(false);
        }
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let mine = Envelope {
            expires_at_ms: now.saturating_add(ttl_ms),
            nonce: self.bucket.nonce(),
            value: value.to_vec(),
        }
        .encode();
        self.bucket.set(key, &mine)?;
        // The proof in the module comment needs both: a check that began at most `settle`
        // before the write ended, and a read back at least `settle` after it.
        let timely = self.clock.monotonic().saturating_sub(began) <= self.settle;
        self.clock.sleep(self.settle);
        let after = self.bucket.get(key)?;
        Ok(timely && after.as_deref() == Some(mine.as_slice()))
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
}

impl<B: Bucket, C: Clock> TokenStore for KeyValueStore<B, C> {
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
        crate::config::RESEND_BODY_MAX_VAR,
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
