//! Sharing a token through the host's store, so that instances with the same credentials
//! make one token request between them: the store keys, the stored entry, and the lease that
//! makes one instance fetch while the others wait. Any store failure means fetching directly:
//! the store never fails a call.

use crate::config::Settings;
use crate::lifecycle::HeldToken;
use crate::ports::{Clock, StoreError, TokenStore};
use crate::redact;
use crate::retry;
use crate::secret::Secret;
use crate::wire;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::Duration;
use zeroize::Zeroize;

/// How long a lease keeps other instances waiting if its holder dies without releasing it.
pub const LEASE_TTL: Duration = Duration::from_secs(10);

/// Pauses between looks at the store while another instance holds the lease: quick at first,
/// about 5 s in all. Counted rather than timed, so a stopped clock cannot make it endless.
pub const WAIT_SCHEDULE_MS: [u64; 12] = [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000, 1000];

/// The store keys of one set of credentials. Derived by SHA-256, so no key reveals the API
/// key, and different base URLs or client ids never share a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    pub id: String,
    pub token: String,
    pub lease: String,
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

/// A token as stored: readable by any instance with the same credentials.
#[derive(Debug)]
pub struct SharedToken {
    pub access_token: Secret,
    pub token_type: String,
    pub expires_in: u64,
    /// Expiry on the wall clock, in milliseconds since the Unix epoch: instances share no
    /// monotonic clock.
    pub expires_at_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct Entry<'a> {
    v: u32,
    id: &'a str,
    access_token: &'a str,
    token_type: &'a str,
    expires_in: u64,
    expires_at_ms: u64,
}

impl SharedToken {
    pub fn encode(&self, id: &str) -> Secret {
        let entry = Entry {
            v: 1,
            id,
            access_token: self.access_token.expose(),
            token_type: &self.token_type,
            expires_in: self.expires_in,
            expires_at_ms: self.expires_at_ms,
        };
        Secret::new(serde_json::to_string(&entry).unwrap_or_default())
    }

    /// The token in `value` if it is ours (format, version, key id) and sane; `None` for a
    /// corrupt or foreign entry, which the caller then replaces.
    pub fn decode(value: &[u8], id: &str) -> Option<SharedToken> {
        let entry: Entry = serde_json::from_slice(value).ok()?;
        let header_safe = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic());
        let sane = entry.v == 1
            && entry.id == id
            && header_safe(entry.access_token)
            && entry.token_type.eq_ignore_ascii_case("bearer")
            && (1..=wire::MAX_EXPIRES_IN).contains(&entry.expires_in);
        sane.then(|| SharedToken {
            access_token: Secret::new(entry.access_token.to_owned()),
            token_type: entry.token_type.to_owned(),
            expires_in: entry.expires_in,
            expires_at_ms: entry.expires_at_ms,
        })
    }

    /// Time left at wall time `now`: to the entry's wall-clock expiry, but never more than its
    /// own `expires_in`, nor the longest lifetime a token endpoint may announce. The expiry is
    /// another instance's clock (or a corrupt writer's) and is not trusted further.
    pub fn remaining(&self, now: Duration) -> Duration {
        let lifetime = Duration::from_secs(self.expires_in.min(wire::MAX_EXPIRES_IN));
        Duration::from_millis(self.expires_at_ms)
            .saturating_sub(now)
            .min(lifetime)
    }
}

/// Whether the shared store worked the last time it was used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreHealth {
    NotConfigured,
    Ok,
    Unavailable,
}

/// What a look at the token entry found.
enum Look {
    Usable(HeldToken),
    Unusable {
        expected: Option<Vec<u8>>,
        seen: Option<Secret>,
    },
    Failed,
}

/// What the shared store gave.
pub enum Acquired {
    /// A usable token another instance fetched.
    Adopted(HeldToken),
    /// This instance holds the lease: it fetches and publishes, replacing `expected`.
    Leader { expected: Option<Vec<u8>> },
    /// Fetch without the store (it failed, or the lease holder took too long).
    Direct,
}

/// How many rejected tokens an instance remembers, so as never to adopt them again. A token
/// lives 20 minutes or so: a few suffice.
pub const REJECTED_MEMORY: usize = 16;

/// A client's store, its keys, the store's latest failure and the tokens the API refused.
pub struct Shared {
    store: Box<dyn TokenStore>,
    keys: Keys,
    /// Already quoted (`redact::quote`): the host's text may echo a value.
    error: RefCell<Option<String>>,
    /// SHA-256 of each token the API refused, newest last: such a token is never adopted.
    rejected: RefCell<VecDeque<[u8; 32]>>,
}

impl Shared {
    pub fn new(store: Box<dyn TokenStore>, settings: &Settings) -> Shared {
        Shared {
            store,
            keys: Keys::new(settings),
            error: RefCell::new(None),
            rejected: RefCell::new(VecDeque::new()),
        }
    }

    /// A token usable until its refresh point, or the lease to fetch one, waiting a bounded
    /// time while another instance holds the lease. A token this instance saw refused is
    /// never adopted: it is replaced like a stale entry.
    pub fn acquire(&self, clock: &impl Clock, settings: &Settings) -> Acquired {
        let pauses = std::iter::once(0).chain(WAIT_SCHEDULE_MS);
        for pause in pauses {
            if pause > 0 {
                clock.sleep(Duration::from_millis(pause));
            }
            let seen = match self.look(clock, settings) {
                Look::Usable(token) => return Acquired::Adopted(token),
                Look::Unusable { seen, .. } => seen,
                Look::Failed => return Acquired::Direct,
            };
            let lease =
                self.store
                    .compare_and_swap(&self.keys.lease, None, &lease_value(), LEASE_TTL);
            match lease {
                // The previous holder may have published and released between the look and
                // the lease: look once more, or this instance would fetch a second token.
                Ok(true) => {
                    return match self.look(clock, settings) {
                        Look::Usable(token) => {
                            let _ = self.store.delete(&self.keys.lease);
                            Acquired::Adopted(token)
                        }
                        Look::Unusable { expected, .. } => Acquired::Leader { expected },
                        Look::Failed => Acquired::Direct,
                    };
                }
                // Another instance is fetching: look again after a pause.
                Ok(false) => {}
                Err(e) => {
                    let seen = seen.as_ref().map_or("", Secret::expose);
                    return self.failed(e, &redact::secrets(settings, seen));
                }
            }
        }
        Acquired::Direct
    }

    /// The token entry as it is now: a token this instance may adopt, or what was read (to be
    /// replaced by compare-and-swap), or a store failure (recorded for `token-status`).
    fn look(&self, clock: &impl Clock, settings: &Settings) -> Look {
        let expected = match self.store.get(&self.keys.token) {
            Ok(value) => value,
            Err(e) => {
                self.failed(e, &redact::secrets(settings, ""));
                return Look::Failed;
            }
        };
        let found = expected
            .as_deref()
            .and_then(|value| SharedToken::decode(value, &self.keys.id));
        // What the store showed us, to withhold should its error text echo it.
        let seen = found.as_ref().map(|f| f.access_token.clone());
        if let Some(found) = found.filter(|f| !self.was_rejected(&f.access_token)) {
            let now = clock.monotonic();
            let token = HeldToken::adopt(found, now, clock.wall(), settings.refresh_margin);
            if token.is_usable(now) {
                self.ok();
                return Look::Usable(token);
            }
        }
        self.ok();
        Look::Unusable { expected, seen }
    }

    /// Shares a fetched token (replacing what was read, stale, foreign or corrupt) and
    /// releases the lease, also after a failed fetch so that waiters stop waiting.
    pub fn publish(
        &self,
        clock: &impl Clock,
        settings: &Settings,
        token: Option<&HeldToken>,
        expected: Option<&[u8]>,
    ) {
        let published = token.map_or("", |t| t.access_token.expose());
        let secrets = redact::secrets(settings, published);
        if let Some(token) = token {
            let ttl = Duration::from_secs(token.seconds_left(clock.monotonic()));
            let value = token.to_shared().encode(&self.keys.id);
            let stored = self.store.compare_and_swap(
                &self.keys.token,
                expected,
                value.expose().as_bytes(),
                ttl,
            );
            if let Err(e) = stored {
                self.failed(e, &secrets);
                return;
            }
        }
        match self.store.delete(&self.keys.lease) {
            Ok(()) => self.ok(),
            Err(e) => {
                self.failed(e, &secrets);
            }
        }
    }

    /// The API refused `token`: this instance never adopts it again, and if the store still
    /// holds it, the entry is replaced by a tombstone, by compare-and-swap on the exact value
    /// read so that a token another instance published meanwhile is kept. The tombstone does
    /// not decode, so the next instance to look takes the lease and fetches.
    pub fn reject(&self, clock: &impl Clock, settings: &Settings, token: &str) {
        {
            let mut rejected = self.rejected.borrow_mut();
            let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            if !rejected.contains(&digest) {
                if rejected.len() >= REJECTED_MEMORY {
                    rejected.pop_front();
                }
                rejected.push_back(digest);
            }
        }
        let secrets = redact::secrets(settings, token);
        let mut value = match self.store.get(&self.keys.token) {
            Ok(Some(value)) => value,
            Ok(None) => return self.ok(),
            Err(e) => {
                self.failed(e, &secrets);
                return;
            }
        };
        let held = SharedToken::decode(&value, &self.keys.id)
            .filter(|entry| entry.access_token.expose() == token);
        if let Some(entry) = held {
            // Kept as long as the token could have been served; at least a second, since a
            // TTL of 0 may mean "no expiry" to a store.
            let ttl = entry.remaining(clock.wall()).max(Duration::from_secs(1));
            let swapped = self.store.compare_and_swap(
                &self.keys.token,
                Some(&value),
                &tombstone(&self.keys.id),
                ttl,
            );
            match swapped {
                Ok(_) => self.ok(),
                Err(e) => {
                    self.failed(e, &secrets);
                }
            }
        }
        // The value held the token: wiped, as `Secret` does.
        value.zeroize();
    }

    /// Whether the API refused `token` in this instance.
    fn was_rejected(&self, token: &Secret) -> bool {
        let rejected = self.rejected.borrow();
        // A fresh instance (the per-request case) has seen no rejection: skip the digest.
        if rejected.is_empty() {
            return false;
        }
        let digest: [u8; 32] = Sha256::digest(token.expose().as_bytes()).into();
        rejected.contains(&digest)
    }

    /// The store's health and, if it is unavailable, the host's word on why.
    pub fn health(&self) -> (StoreHealth, Option<String>) {
        match self.error.borrow().clone() {
            None => (StoreHealth::Ok, None),
            Some(error) => (StoreHealth::Unavailable, Some(error)),
        }
    }

    fn ok(&self) {
        *self.error.borrow_mut() = None;
    }

    /// Records a store failure. The host's text is quoted like any text from outside, so a
    /// store that echoes a value (a token) or a credential shows nothing of it.
    fn failed(&self, error: StoreError, secrets: &[&str]) -> Acquired {
        *self.error.borrow_mut() = Some(redact::quote(&error.0, secrets));
        Acquired::Direct
    }
}

/// What replaces a refused token's entry: ours (version, key id), readable by an operator,
/// and not a token, so every instance ignores and replaces it.
fn tombstone(id: &str) -> Vec<u8> {
    format!(r#"{{"v":1,"id":"{id}","rejected":true}}"#).into_bytes()
}

/// A lease value: random, so a holder could tell its own lease from another's.
fn lease_value() -> Vec<u8> {
    format!("{:016x}", retry::jitter().to_bits()).into_bytes()
}

#[cfg(test)]
mod tests;
