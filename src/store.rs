//! Sharing a token through a host-provided store: keys, the stored entry, and the lease that
//! makes one instance fetch while the others wait.

use crate::config::Settings;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::time::Duration;

/// A store operation that failed; the text is the host's and holds no secret of ours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError(pub String);

/// The host's token store (the WIT `token-store` interface).
pub trait TokenStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Sets `key` only if its value is `expected` (`None`: absent). `Ok(true)` if it was set.
    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError>;
    fn delete(&self, key: &str) -> Result<(), StoreError>;
}

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
            && (1..=crate::wire::MAX_EXPIRES_IN).contains(&entry.expires_in);
        sane.then(|| SharedToken {
            access_token: Secret::new(entry.access_token.to_owned()),
            token_type: entry.token_type.to_owned(),
            expires_in: entry.expires_in,
            expires_at_ms: entry.expires_at_ms,
        })
    }

    /// Time left at wall time `now`.
    pub fn remaining(&self, now: Duration) -> Duration {
        Duration::from_millis(self.expires_at_ms).saturating_sub(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ClientConfig, Environment};

    fn settings(base: Option<&str>, client: &str, key: &str) -> Settings {
        let mut config =
            ClientConfig::new(client.into(), Secret::new(key.into()), Environment::Sandbox);
        config.base_url = base.map(Into::into);
        Settings::new(config).expect("valid")
    }

    #[test]
    fn keys_hide_the_secret_and_separate_credentials() {
        let a = Keys::new(&settings(None, "client", "key-1"));
        assert!(a.token.starts_with("mangopay-auth/v1/token/") && a.id.len() == 64);
        assert!(!a.token.contains("key-1") && !a.token.contains("client"));
        assert_eq!(a, Keys::new(&settings(None, "client", "key-1")));
        assert_ne!(a.id, Keys::new(&settings(None, "client", "key-2")).id);
        assert_ne!(a.id, Keys::new(&settings(None, "other", "key-1")).id);
        let prod = settings(Some("https://api.mangopay.com"), "client", "key-1");
        assert_ne!(a.id, Keys::new(&prod).id);
    }

    #[test]
    fn entries_round_trip_and_refuse_foreign_or_corrupt_ones() {
        let token = SharedToken {
            access_token: Secret::new("tok".into()),
            token_type: "bearer".into(),
            expires_in: 1200,
            expires_at_ms: 5_000_000,
        };
        let value = token.encode("id-a");
        let back = SharedToken::decode(value.expose().as_bytes(), "id-a").expect("ours");
        assert_eq!(back.access_token.expose(), "tok");
        assert_eq!(back.expires_at_ms, 5_000_000);
        assert_eq!(
            back.remaining(Duration::from_millis(4_000_000)),
            Duration::from_secs(1000)
        );
        assert!(SharedToken::decode(value.expose().as_bytes(), "id-b").is_none());
        for corrupt in [
            &b"garbage"[..],
            b"",
            br#"{"v":2,"id":"id-a","access_token":"t","token_type":"bearer","expires_in":5,"expires_at_ms":1}"#,
            br#"{"v":1,"id":"id-a","access_token":"a b","token_type":"bearer","expires_in":5,"expires_at_ms":1}"#,
            br#"{"v":1,"id":"id-a","access_token":"t","token_type":"mac","expires_in":5,"expires_at_ms":1}"#,
            br#"{"v":1,"id":"id-a","access_token":"t","token_type":"bearer","expires_in":0,"expires_at_ms":1}"#,
        ] {
            assert!(SharedToken::decode(corrupt, "id-a").is_none());
        }
    }

    #[test]
    fn the_wait_is_bounded() {
        let total: u64 = WAIT_SCHEDULE_MS.iter().sum();
        assert!((5_000..=6_000).contains(&total), "{total}");
    }
}
