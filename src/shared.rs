//! Sharing a token through the host's store, so that instances with the same credentials
//! make one token request between them, in good times and bad: the lease that makes one
//! instance fetch while the others wait or keep serving a live token, and the shared
//! cool-down that keeps every instance from repeating a token request the token endpoint
//! refused or the host's TLS set-up failed. Any store failure means fetching directly, with
//! the instance's own cool-down: the store never fails a call.
//!
//! Owns `Shared` (a client's store, what it saw, and the log lines of its health), what its
//! looks answer (`Acquired`, `Lead`, `Outcome`) and the waits between looks. A renewal's
//! driver reaches it through `shared::sharing::Sharing` (`Action::Look` with `acquire`,
//! `Publish` with `finish`), which `Unshared` answers when there is no store. A look's store
//! calls are blocking, as every host's `wasi:keyvalue` is (the WASI 0.3 middleware's too).
//! The store keys and the entries' formats are in `shared::stored`; the token's types in
//! `token`.
//!
//! Bounds against clocks that disagree: an entry carries its writer's wall-clock expiry, but
//! no reader trusts it further than the entry's own lifetime (a token's `expires_in`, a
//! lease's `ttl_ms`, a cool-down's `pause_ms`) from when this instance first saw it.

use crate::error::Error;
use crate::log::{Field, Level, Logger, Value};
use crate::origin::Origin;
use crate::ports::{Clock, StoreError, TokenStore};
use crate::redact;
use crate::retry::Deadline;
use crate::secret::Secret;
use crate::settings::Settings;
use crate::token::{HeldToken, SharedToken, StoreHealth};
use sha2::{Digest, Sha256};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;
use zeroize::Zeroize;

pub mod sharing;
pub mod stored;

use stored::{
    BlockEntry, Keys, SharedBlock, StoredError, TokenMark, lease_ttl_of, lease_value, millis,
    released, tombstone,
};

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

/// What a try for the lease found (`Shared::try_lease`).
enum Lease {
    /// This instance holds it now: its value.
    Won(Vec<u8>),
    /// Another instance holds a live one.
    Held,
    /// The store failed.
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
    /// No store is configured (`Unshared`): fetch without one.
    Unshared,
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
pub enum Outcome {
    Fetched(Rc<HeldToken>),
    /// The cool-down to share: the error, its pause and the strikes so far.
    CoolDown {
        error: Error,
        pause: Duration,
        strikes: u32,
    },
    /// A failure that other instances need not hear of (they try again themselves).
    Failed,
}

/// How many rejected tokens an instance remembers, so as never to adopt them again. A token
/// lives 20 minutes or so: a few suffice.
pub const REJECTED_MEMORY: usize = 16;

/// A client's store, what it needs of the settings (taken once), the store's latest failure
/// and the tokens the API refused.
pub struct Shared {
    store: Box<dyn TokenStore>,
    keys: Keys,
    lease_ttl: Duration,
    /// `refresh-margin-ms`, for the tokens adopted from the store.
    refresh_margin: Duration,
    /// `cool-down.max-ms`: a shared cool-down's entry outlives its pause by this much.
    cool_down_max: Duration,
    /// The base URL, which a stored TLS fault's hint names.
    base: Origin,
    /// What no store error may show besides the token at hand: the API key and the Base64
    /// credential (`redact::secrets`), taken once.
    credentials: [Secret; 2],
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
    /// Where the store's failures and recoveries are told (`store-unavailable`, `store-back`).
    log: Logger,
    /// Whether the latest line told the store down: a change is told once.
    told_down: Cell<bool>,
}

struct LeaseSeen {
    value: Vec<u8>,
    at: Duration,
    ttl: Duration,
    waited: Duration,
}

impl Shared {
    pub fn new(store: Box<dyn TokenStore>, settings: &Settings) -> Shared {
        let [key, basic, _] = redact::secrets(settings, "");
        Shared {
            store,
            keys: Keys::new(settings),
            lease_ttl: lease_ttl(settings),
            refresh_margin: settings.refresh_margin,
            cool_down_max: settings.cool_down.max,
            base: settings.base.clone(),
            credentials: [Secret::new(key.into()), Secret::new(basic.into())],
            error: RefCell::new(None),
            rejected: RefCell::new(VecDeque::new()),
            lease_seen: RefCell::new(None),
            block_seen: RefCell::new(None),
            log: Logger::default(),
            told_down: Cell::new(false),
        }
    }

    /// A usable token, or a live one to serve while another instance renews (`held_alive`:
    /// this instance holds one), or the shared cool-down's error, or the lease to fetch one.
    /// Without a live token it has its driver wait `pause` (`Acquired::Wait`) while another
    /// instance holds a live lease, as long as `deadline` allows, and then look again with
    /// the next pause. A token this instance saw refused is never adopted: it is replaced
    /// like a stale entry. One look per call, so that a blocking and an async driver share it.
    /// (`Sharing::acquire`, which also logs a change of the store's health.)
    fn try_acquire(
        &self,
        clock: &impl Clock,
        held_alive: bool,
        deadline: &Deadline,
        pause: Duration,
    ) -> Acquired {
        let alive = match self.look(clock) {
            Look::Usable(token) => return Acquired::Adopted(token),
            Look::Unusable { alive, .. } => alive,
            Look::Failed => return Acquired::Direct,
        };
        let serve_alive = held_alive || alive.is_some();
        match self.read_block(clock) {
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
        match self.try_lease(clock) {
            Lease::Won(lease) => return self.after_winning(clock, held_alive, lease),
            // Another instance renews: a live token is served meanwhile.
            Lease::Held if serve_alive => return Acquired::ServeAlive(alive),
            Lease::Held => {}
            Lease::Failed => return Acquired::Direct,
        }
        if !deadline.allows(clock.monotonic(), pause) {
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
    fn after_winning(&self, clock: &impl Clock, held_alive: bool, lease: Vec<u8>) -> Acquired {
        let found = match self.look(clock) {
            Look::Usable(token) => Acquired::Adopted(token),
            Look::Unusable {
                expected,
                holds_token,
                alive,
            } => match self.read_block(clock) {
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
        self.release(&lease, "");
        found
    }

    /// Takes the lease if it is free: absent, released, not ours, or past its own TTL since
    /// this instance first saw it.
    fn try_lease(&self, clock: &impl Clock) -> Lease {
        let current = match self.store.get(&self.keys.lease) {
            Ok(current) => current,
            Err(e) => {
                self.failed(e, "");
                return Lease::Failed;
            }
        };
        if let Some(value) = &current
            && let Some(ttl) = lease_ttl_of(value, &self.keys.id)
            && !self.lease_outlived(clock, value, ttl)
        {
            return Lease::Held;
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
                Lease::Won(mine)
            }
            // Another instance took it first.
            Ok(false) => Lease::Held,
            Err(e) => {
                self.failed(e, "");
                Lease::Failed
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
    fn release(&self, lease: &[u8], token: &str) {
        let released = released(&self.keys.id);
        let swapped =
            self.store
                .compare_and_swap(&self.keys.lease, Some(lease), &released, RELEASED_TTL);
        if let Err(e) = swapped {
            self.failed(e, token);
        }
    }

    /// What the cool-down key holds (whatever it is: a lead replaces it by compare-and-swap)
    /// and the cool-down in it, if it is one of ours: `Err` when the store failed.
    fn read_block(&self, clock: &impl Clock) -> Result<(Option<Vec<u8>>, Option<SharedBlock>), ()> {
        let value = match self.store.get(&self.keys.block) {
            Ok(value) => value,
            Err(e) => {
                self.failed(e, "");
                return Err(());
            }
        };
        let secrets = self.secrets("");
        let block = value.as_deref().and_then(|value| {
            let mut block =
                SharedBlock::decode(value, &self.keys.id, clock.wall(), &secrets, &self.base)?;
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
    fn look(&self, clock: &impl Clock) -> Look {
        let expected = match self.store.get(&self.keys.token) {
            Ok(value) => value,
            Err(e) => {
                self.failed(e, "");
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
            let token = HeldToken::adopt(found, now, clock.wall(), self.refresh_margin);
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
    /// (`Sharing::finish`.)
    fn publish(&self, clock: &impl Clock, lead: Lead, outcome: Outcome) {
        match outcome {
            Outcome::Fetched(token) => {
                let held = token.access_token.expose();
                let ttl = Duration::from_secs(token.seconds_left(clock.monotonic()));
                let value = token.to_shared().encode(&self.keys.id);
                let value = value.expose().as_bytes();
                self.replace_token(clock, lead.expected.as_deref(), value, ttl, held);
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
                        self.failed(e, held);
                    }
                }
                self.release(&lead.lease, held);
            }
            Outcome::CoolDown {
                error,
                pause,
                strikes,
            } => {
                if let Some(stored) = StoredError::from_error(&error) {
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
                    let ttl = pause.saturating_add(self.cool_down_max);
                    let stored = self.store.compare_and_swap(
                        &self.keys.block,
                        lead.block.as_deref(),
                        &value,
                        ttl,
                    );
                    if let Err(e) = stored {
                        self.failed(e, "");
                    }
                }
                self.release(&lead.lease, "");
            }
            Outcome::Failed => self.release(&lead.lease, ""),
        }
    }

    /// Publishes a token over `expected`. If that entry changed meanwhile (it expired, or a
    /// refusal tombstoned it), what is there now is replaced unless it is a usable token.
    fn replace_token(
        &self,
        clock: &impl Clock,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl: Duration,
        token: &str,
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
                    self.failed(e, token);
                    return;
                }
            }
            match self.look(clock) {
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
    /// (`Sharing::reject`.)
    fn forget(&self, clock: &impl Clock, token: &str) {
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
        let mut value = match self.store.get(&self.keys.token) {
            Ok(Some(value)) => value,
            Ok(None) => return self.ok(),
            Err(e) => {
                self.failed(e, token);
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
                    self.failed(e, token);
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

    /// One line when the store's health changed since the latest told (a call's end): a
    /// store that stays down is told once, not on every call.
    fn health_logged(&self, clock: &impl Clock) {
        let error = self.error.borrow();
        if error.is_some() == self.told_down.get() {
            return;
        }
        self.told_down.set(error.is_some());
        let (level, event) = match error.is_some() {
            true => (Level::Warn, "store-unavailable"),
            false => (Level::Info, "store-back"),
        };
        if self.log.enabled(level) {
            let detail = error.as_deref().map(|d| (Field::Detail, Value::Text(d)));
            self.log
                .event(level, event, clock.wall(), detail.as_slice());
        }
    }

    /// What must never appear in an error (`redact::secrets`): the credentials and `token`,
    /// the access token at hand (`""` for none).
    fn secrets<'a>(&'a self, token: &'a str) -> [&'a str; 3] {
        let [key, basic] = &self.credentials;
        [key.expose(), basic.expose(), token]
    }

    /// Records a store failure. The host's text is quoted like any text from outside, so a
    /// store that echoes a value (a token, `token` the one at hand) or a credential shows
    /// nothing of it.
    fn failed(&self, error: StoreError, token: &str) {
        *self.error.borrow_mut() = Some(redact::quote(&error.0, &self.secrets(token)));
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fleet_tests;
