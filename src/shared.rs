//! Sharing a token through the host's store, so that instances with the same credentials
//! make one token request between them, in good times and bad: the store keys, the stored
//! token, the lease that makes one instance fetch while the others wait or keep serving a
//! live token, and the shared cool-down that keeps every instance from repeating a token
//! request the token endpoint refused or the host's TLS set-up failed. Any store failure
//! means fetching directly, with the instance's own cool-down: the store never fails a call.
//!
//! Bounds against clocks that disagree: an entry carries its writer's wall-clock expiry, but
//! no reader trusts it further than the entry's own lifetime (a token's `expires_in`, a
//! lease's `ttl_ms`, a cool-down's `pause_ms`) from when this instance first saw it.

use crate::error::{self, ApiError, Error, OAuthError, UnexpectedResponse};
use crate::lifecycle::HeldToken;
use crate::origin::Origin;
use crate::ports::{Clock, StoreError, TokenStore};
use crate::redact;
use crate::retry::{self, Deadline};
use crate::secret::Secret;
use crate::settings::Settings;
use crate::wire;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::Duration;
use zeroize::Zeroize;

/// What a lease adds to the longest fetch its holder's settings allow (`retry.budget-ms`,
/// which every call keeps to): the time to publish and release.
pub const LEASE_SLACK: Duration = Duration::from_secs(2);

/// How long a released lease's marker stays: a moment, as the key is free the instant it
/// is written.
const RELEASED_TTL: Duration = Duration::from_secs(1);

/// Pauses between looks at the store while another instance holds the lease: quick at first,
/// then every `WAIT_STEP_MAX`, as long as the waiting call's deadline allows.
pub const WAIT_FIRST: Duration = Duration::from_millis(5);
pub const WAIT_STEP_MAX: Duration = Duration::from_millis(250);

/// How long a lease lives: longer than the longest fetch the settings allow.
pub fn lease_ttl(settings: &Settings) -> Duration {
    settings.retry.budget.saturating_add(LEASE_SLACK)
}

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

fn lease_value(id: &str, ttl: Duration) -> Vec<u8> {
    let entry = LeaseEntry {
        v: 1,
        id: id.to_owned(),
        holder: format!("{:016x}", retry::jitter().to_bits()),
        ttl_ms: millis(ttl),
    };
    serde_json::to_vec(&entry).unwrap_or_default()
}

/// The lifetime of the lease in `value`, if it is one of ours and not released.
fn lease_ttl_of(value: &[u8], id: &str) -> Option<Duration> {
    let entry: LeaseEntry = serde_json::from_slice(value).ok()?;
    (entry.v == 1 && entry.id == id).then(|| Duration::from_millis(entry.ttl_ms))
}

/// What replaces a lease its holder is done with: not a lease, so the key is free at once.
fn released(id: &str) -> Vec<u8> {
    format!(r#"{{"v":1,"id":"{id}","released":true}}"#).into_bytes()
}

/// A shared cool-down as stored: until when no token request may be made, the typed error
/// to answer meanwhile (its texts already quoted: no secret in them), the strikes, so that
/// the doubling after repeated failures is shared too, and which token entry it was written
/// over, so that a token published since ends the doubling.
#[derive(Serialize, Deserialize)]
struct BlockEntry {
    v: u32,
    id: String,
    until_ms: u64,
    pause_ms: u64,
    strikes: u32,
    error: StoredError,
    /// `TokenMark` of the token entry the writer read: 0 if it held no token. Absent from
    /// an older writer's entry: then no token is known to be newer.
    #[serde(default)]
    over: Option<u64>,
}

/// The error a cool-down answers with (one of the token endpoint's answers, or a TLS fault),
/// flat: an internally tagged enum made serde link its buffering deserializer, 23 KB of the
/// store world for four cases.
#[derive(Serialize, Deserialize)]
struct StoredError {
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
    fn from_error(error: &Error) -> Option<StoredError> {
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
struct SharedBlock {
    /// What is left of it at the read: to its writer's wall-clock end, but never more than
    /// its own pause (from when this instance first saw it, see `Shared::block_left`).
    remaining: Duration,
    pause: Duration,
    strikes: u32,
    error: Error,
    /// The token entry it was written over; `None` if its writer did not say.
    over: Option<TokenMark>,
}

impl SharedBlock {
    fn decode(
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
    fn strikes_before(&self, token: &TokenMark) -> u32 {
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
pub struct TokenMark(u64);

impl TokenMark {
    fn of(entry: Option<&[u8]>, holds_token: bool) -> TokenMark {
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

/// Whether the shared store worked the last time it was used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreHealth {
    NotConfigured,
    Ok,
    Unavailable,
}

/// What a look at the token entry found.
enum Look {
    /// Before its refresh point.
    Usable(HeldToken),
    /// Not usable: what was read (to be replaced by compare-and-swap), whether it held one of
    /// our tokens (stale or refused), and the token if it is past its refresh point but still
    /// alive (served while another instance renews).
    Unusable {
        expected: Option<Vec<u8>>,
        holds_token: bool,
        alive: Option<HeldToken>,
    },
    Failed,
}

/// What the shared store gave.
pub enum Acquired {
    /// A usable token another instance fetched.
    Adopted(HeldToken),
    /// Another instance is renewing, or a cool-down forbids renewing: serve this live token
    /// (from the store), or the one this instance holds (`None`).
    ServeAlive(Option<HeldToken>),
    /// A cool-down other instances published: answer `error` for `remaining`, send nothing.
    Blocked { error: Error, remaining: Duration },
    /// This instance holds the lease: it fetches, then calls `Sharing::finish`.
    Leader(Lead),
    /// Fetch without the store (it failed).
    Direct,
    /// Another instance holds a live lease and no token lives: wait this long (counted
    /// against the call's deadline), then look again with `next_pause`.
    Wait(Duration),
    /// Another instance held the lease for all of this call's budget.
    TimedOut(Error),
}

/// The pause after `pause`: doubling, up to `WAIT_STEP_MAX`.
pub fn next_pause(pause: Duration) -> Duration {
    pause.saturating_mul(2).min(WAIT_STEP_MAX)
}

/// What the lease holder must know to publish and release.
pub struct Lead {
    /// The token entry read, replaced by compare-and-swap.
    expected: Option<Vec<u8>>,
    /// This instance's lease value: released only while it is still there.
    lease: Vec<u8>,
    /// What the cool-down key held (an ended cool-down, a cleared one, anything), replaced
    /// by compare-and-swap.
    block: Option<Vec<u8>>,
    /// The strikes the ended cool-down carried, for the shared doubling: none if a token was
    /// published after it.
    pub strikes: u32,
    /// The token entry read: a cool-down this lead publishes is written over it.
    pub token: TokenMark,
}

/// How a lead's fetch ended, for `finish`.
pub enum Outcome<'a> {
    Fetched(&'a HeldToken),
    /// The cool-down to share: the error, its pause and the strikes so far.
    CoolDown {
        error: &'a Error,
        pause: Duration,
        strikes: u32,
    },
    /// A failure that other instances need not hear of (they try again themselves).
    Failed,
}

/// How many rejected tokens an instance remembers, so as never to adopt them again. A token
/// lives 20 minutes or so: a few suffice.
pub const REJECTED_MEMORY: usize = 16;

/// A client's store, its keys, the store's latest failure and the tokens the API refused.
pub struct Shared {
    store: Box<dyn TokenStore>,
    keys: Keys,
    lease_ttl: Duration,
    /// Already quoted (`redact::quote`): the host's text may echo a value.
    error: RefCell<Option<String>>,
    /// SHA-256 of each token the API refused, newest last: such a token is never adopted.
    rejected: RefCell<VecDeque<[u8; 32]>>,
    /// The other instance's lease this instance is waiting on, and when it first saw it (on
    /// the monotonic clock, and in pauses counted): a lease lives no longer than its own TTL
    /// from then, whatever the writer's clock said.
    lease_seen: RefCell<Option<LeaseSeen>>,
    /// The latest cool-down entry read and when it was first seen (monotonic): it lasts no
    /// longer than its own pause from then, whatever the writer's clock said.
    block_seen: RefCell<Option<(Vec<u8>, Duration)>>,
}

struct LeaseSeen {
    value: Vec<u8>,
    at: Duration,
    ttl: Duration,
    waited: Duration,
}

impl Shared {
    pub fn new(store: Box<dyn TokenStore>, settings: &Settings) -> Shared {
        Shared {
            store,
            keys: Keys::new(settings),
            lease_ttl: lease_ttl(settings),
            error: RefCell::new(None),
            rejected: RefCell::new(VecDeque::new()),
            lease_seen: RefCell::new(None),
            block_seen: RefCell::new(None),
        }
    }

    /// A usable token, or a live one to serve while another instance renews (`held_alive`:
    /// this instance holds one), or the shared cool-down's error, or the lease to fetch one.
    /// Without a live token it has its driver wait `pause` (`Acquired::Wait`) while another
    /// instance holds a live lease, as long as `deadline` allows, and then look again with
    /// the next pause. A token this instance saw refused is never adopted: it is replaced
    /// like a stale entry. One look per call, so that a blocking and an async driver share it.
    pub fn acquire(
        &self,
        clock: &impl Clock,
        settings: &Settings,
        held_alive: bool,
        deadline: &Deadline,
        pause: Duration,
    ) -> Acquired {
        let alive = match self.look(clock, settings) {
            Look::Usable(token) => return Acquired::Adopted(token),
            Look::Unusable { alive, .. } => alive,
            Look::Failed => return Acquired::Direct,
        };
        let serve_alive = held_alive || alive.is_some();
        match self.read_block(clock, settings) {
            Ok((_, Some(block))) if !block.remaining.is_zero() => {
                return match serve_alive {
                    true => Acquired::ServeAlive(alive),
                    false => Acquired::Blocked {
                        error: block.error,
                        remaining: block.remaining,
                    },
                };
            }
            Ok(_) => {}
            Err(()) => return Acquired::Direct,
        }
        match self.try_lease(clock, settings) {
            Ok(Some(lease)) => return self.after_winning(clock, settings, held_alive, lease),
            // Another instance renews: a live token is served meanwhile.
            Ok(None) if serve_alive => return Acquired::ServeAlive(alive),
            Ok(None) => {}
            Err(()) => return Acquired::Direct,
        }
        if !deadline.allows(clock, pause) {
            return Acquired::TimedOut(Error::Transport(crate::ports::TransportError {
                kind: crate::ports::TransportKind::Timeout,
                detail: "another instance's token request outlasted this call's retry \
                         budget (retry.budget-ms)"
                    .into(),
            }));
        }
        if let Some(seen) = self.lease_seen.borrow_mut().as_mut() {
            seen.waited = seen.waited.saturating_add(pause);
        }
        Acquired::Wait(pause)
    }

    /// The lease was won. The previous holder may have published (a token or a cool-down)
    /// and released between the looks and the lease: look once more, or this instance would
    /// make a second token request. Every way out but `Leader` releases the lease.
    fn after_winning(
        &self,
        clock: &impl Clock,
        settings: &Settings,
        held_alive: bool,
        lease: Vec<u8>,
    ) -> Acquired {
        let found = match self.look(clock, settings) {
            Look::Usable(token) => Acquired::Adopted(token),
            Look::Unusable {
                expected,
                holds_token,
                alive,
            } => match self.read_block(clock, settings) {
                Ok((_, Some(block))) if !block.remaining.is_zero() => {
                    match held_alive || alive.is_some() {
                        true => Acquired::ServeAlive(alive),
                        false => Acquired::Blocked {
                            error: block.error,
                            remaining: block.remaining,
                        },
                    }
                }
                Ok((value, block)) => {
                    let token = TokenMark::of(expected.as_deref(), holds_token);
                    return Acquired::Leader(Lead {
                        strikes: block.map_or(0, |block| block.strikes_before(&token)),
                        expected,
                        lease,
                        block: value,
                        token,
                    });
                }
                Err(()) => Acquired::Direct,
            },
            Look::Failed => Acquired::Direct,
        };
        self.release(settings, &lease, "");
        found
    }

    /// Takes the lease if it is free: absent, released, not ours, or past its own TTL since
    /// this instance first saw it. `Ok(None)` while another instance holds a live one.
    fn try_lease(&self, clock: &impl Clock, settings: &Settings) -> Result<Option<Vec<u8>>, ()> {
        let current = match self.store.get(&self.keys.lease) {
            Ok(current) => current,
            Err(e) => {
                self.failed(e, &redact::secrets(settings, ""));
                return Err(());
            }
        };
        if let Some(value) = &current
            && let Some(ttl) = lease_ttl_of(value, &self.keys.id)
            && !self.lease_outlived(clock, value, ttl)
        {
            return Ok(None);
        }
        let mine = lease_value(&self.keys.id, self.lease_ttl);
        match self.store.compare_and_swap(
            &self.keys.lease,
            current.as_deref(),
            &mine,
            self.lease_ttl,
        ) {
            Ok(true) => {
                *self.lease_seen.borrow_mut() = None;
                Ok(Some(mine))
            }
            // Another instance took it first.
            Ok(false) => Ok(None),
            Err(e) => {
                self.failed(e, &redact::secrets(settings, ""));
                Err(())
            }
        }
    }

    /// Whether another instance's lease `value` has lived its `ttl` since this instance first
    /// saw it (by the clock or by the pauses counted, whichever says more).
    fn lease_outlived(&self, clock: &impl Clock, value: &[u8], ttl: Duration) -> bool {
        let now = clock.monotonic();
        let mut seen = self.lease_seen.borrow_mut();
        match seen.as_ref() {
            Some(s) if s.value == value => {
                let age = now.saturating_sub(s.at).max(s.waited);
                age >= s.ttl.min(ttl)
            }
            _ => {
                *seen = Some(LeaseSeen {
                    value: value.to_vec(),
                    at: now,
                    ttl,
                    waited: Duration::ZERO,
                });
                false
            }
        }
    }

    /// Releases this instance's lease by compare-and-swap on its own value: a lease another
    /// instance took over (after this one's expired) is left alone.
    fn release(&self, settings: &Settings, lease: &[u8], token: &str) {
        let released = released(&self.keys.id);
        let swapped =
            self.store
                .compare_and_swap(&self.keys.lease, Some(lease), &released, RELEASED_TTL);
        if let Err(e) = swapped {
            self.failed(e, &redact::secrets(settings, token));
        }
    }

    /// What the cool-down key holds (whatever it is: a lead replaces it by compare-and-swap)
    /// and the cool-down in it, if it is one of ours: `Err` when the store failed.
    fn read_block(
        &self,
        clock: &impl Clock,
        settings: &Settings,
    ) -> Result<(Option<Vec<u8>>, Option<SharedBlock>), ()> {
        let secrets = redact::secrets(settings, "");
        let value = match self.store.get(&self.keys.block) {
            Ok(value) => value,
            Err(e) => {
                self.failed(e, &secrets);
                return Err(());
            }
        };
        let block = value.as_deref().and_then(|value| {
            let mut block =
                SharedBlock::decode(value, &self.keys.id, clock.wall(), &secrets, &settings.base)?;
            block.remaining = block
                .remaining
                .min(self.block_left(clock, value, block.pause));
            Some(block)
        });
        Ok((value, block))
    }

    /// What is left of the cool-down entry `value` by this instance's own clock: its `pause`
    /// from when this instance first saw it. A writer whose clock runs ahead cannot make it
    /// last longer.
    fn block_left(&self, clock: &impl Clock, value: &[u8], pause: Duration) -> Duration {
        let now = clock.monotonic();
        let mut seen = self.block_seen.borrow_mut();
        match seen.as_ref() {
            Some((seen_value, at)) if seen_value == value => {
                pause.saturating_sub(now.saturating_sub(*at))
            }
            _ => {
                *seen = Some((value.to_vec(), now));
                pause
            }
        }
    }

    /// The token entry as it is now: a token this instance may adopt, or what was read (to be
    /// replaced by compare-and-swap) and a live token in it, or a store failure (recorded for
    /// `token-status`).
    fn look(&self, clock: &impl Clock, settings: &Settings) -> Look {
        let expected = match self.store.get(&self.keys.token) {
            Ok(value) => value,
            Err(e) => {
                self.failed(e, &redact::secrets(settings, ""));
                return Look::Failed;
            }
        };
        self.ok();
        let found = expected
            .as_deref()
            .and_then(|value| SharedToken::decode(value, &self.keys.id));
        let holds_token = found.is_some();
        let found = found.filter(|f| !self.was_rejected(&f.access_token));
        let mut alive = None;
        if let Some(found) = found {
            let now = clock.monotonic();
            let token = HeldToken::adopt(found, now, clock.wall(), settings.refresh_margin);
            if token.is_usable(now) {
                return Look::Usable(token);
            }
            alive = token.is_alive(now).then_some(token);
        }
        Look::Unusable {
            expected,
            holds_token,
            alive,
        }
    }

    /// The lease holder's fetch is over: shares its token (replacing what was read, stale,
    /// foreign or corrupt, or whatever replaced that meanwhile if it is not a usable token)
    /// or its cool-down, then releases the lease. Every step is tried, store errors or not.
    pub fn finish(&self, clock: &impl Clock, settings: &Settings, lead: Lead, outcome: Outcome) {
        match outcome {
            Outcome::Fetched(token) => {
                let secrets = redact::secrets(settings, token.access_token.expose());
                let ttl = Duration::from_secs(token.seconds_left(clock.monotonic()));
                let value = token.to_shared().encode(&self.keys.id);
                let value = value.expose().as_bytes();
                self.replace_token(
                    clock,
                    settings,
                    lead.expected.as_deref(),
                    value,
                    ttl,
                    &secrets,
                );
                // The cool-down has ended in success: the strikes start again from zero. A key
                // already cleared is left as it is.
                let cleared = released(&self.keys.id);
                if let Some(block) = lead.block.as_ref().filter(|b| **b != cleared) {
                    let swapped = self.store.compare_and_swap(
                        &self.keys.block,
                        Some(block),
                        &cleared,
                        RELEASED_TTL,
                    );
                    if let Err(e) = swapped {
                        self.failed(e, &secrets);
                    }
                }
                self.release(settings, &lead.lease, token.access_token.expose());
            }
            Outcome::CoolDown {
                error,
                pause,
                strikes,
            } => {
                if let Some(stored) = StoredError::from_error(error) {
                    let entry = BlockEntry {
                        v: 1,
                        id: self.keys.id.clone(),
                        until_ms: millis(clock.wall().saturating_add(pause)),
                        pause_ms: millis(pause),
                        strikes,
                        error: stored,
                        over: Some(lead.token.0),
                    };
                    let value = serde_json::to_vec(&entry).unwrap_or_default();
                    // Kept past its end for as long again as the longest cool-down, so that
                    // the next failure doubles it.
                    let ttl = pause.saturating_add(settings.cool_down.max);
                    let stored = self.store.compare_and_swap(
                        &self.keys.block,
                        lead.block.as_deref(),
                        &value,
                        ttl,
                    );
                    if let Err(e) = stored {
                        self.failed(e, &redact::secrets(settings, ""));
                    }
                }
                self.release(settings, &lead.lease, "");
            }
            Outcome::Failed => self.release(settings, &lead.lease, ""),
        }
    }

    /// Publishes a token over `expected`. If that entry changed meanwhile (it expired, or a
    /// refusal tombstoned it), what is there now is replaced unless it is a usable token.
    fn replace_token(
        &self,
        clock: &impl Clock,
        settings: &Settings,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl: Duration,
        secrets: &[&str],
    ) {
        let mut expected = expected.map(<[u8]>::to_vec);
        for _ in 0..2 {
            match self
                .store
                .compare_and_swap(&self.keys.token, expected.as_deref(), value, ttl)
            {
                Ok(true) => return self.ok(),
                Ok(false) => {}
                Err(e) => {
                    self.failed(e, secrets);
                    return;
                }
            }
            match self.look(clock, settings) {
                Look::Unusable {
                    expected: now_there,
                    ..
                } => expected = now_there,
                Look::Usable(_) | Look::Failed => return,
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
    fn failed(&self, error: StoreError, secrets: &[&str]) {
        *self.error.borrow_mut() = Some(redact::quote(&error.0, secrets));
    }
}

/// What replaces a refused token's entry: ours (version, key id), readable by an operator,
/// and not a token, so every instance ignores and replaces it.
fn tombstone(id: &str) -> Vec<u8> {
    format!(r#"{{"v":1,"id":"{id}","rejected":true}}"#).into_bytes()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fleet_tests;
