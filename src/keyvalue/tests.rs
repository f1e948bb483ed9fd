use super::*;
use crate::fakes::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};

/// How the fake's `cas` behaves, one per platform behaviour.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Atomics {
    /// draft2 over a store whose `swap` is exact, also on an absent key (Spin's Redis: WATCH).
    ExactCas,
    /// draft2 over Spin's SQLite store: `swap` after `current()` was none upserts blindly.
    SpinUpsertCas,
    /// draft: `increment` only.
    IncrementOnly,
}

#[derive(Default)]
struct Inner {
    map: Mutex<HashMap<String, Vec<u8>>>,
    now_ms: AtomicU64,
    nonce: AtomicU64,
    /// Contenders wait here before their first `increment` or `swap`: all have read before
    /// any of them votes or writes.
    gate: Mutex<Option<Arc<Barrier>>>,
    reads: AtomicU64,
    /// The `read` that fails, counted from 1 (0: none).
    failing_read: AtomicU64,
}

#[derive(Clone)]
struct Fake {
    atomics: Atomics,
    inner: Arc<Inner>,
}

impl Fake {
    fn new(atomics: Atomics) -> Fake {
        let fake = Fake {
            atomics,
            inner: Arc::default(),
        };
        fake.inner.now_ms.store(1_800_000_000_000, Ordering::SeqCst);
        fake
    }

    fn advance_ms(&self, ms: u64) {
        self.inner.now_ms.fetch_add(ms, Ordering::SeqCst);
    }

    fn raw(&self, key: &str) -> Option<Vec<u8>> {
        self.inner.map.lock().unwrap().get(key).cloned()
    }

    fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.inner.map.lock().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    }

    /// The first vote or swap of each thread waits for the other contenders.
    fn wait_at_gate(&self) {
        let gate = self.inner.gate.lock().unwrap().clone();
        if let Some(gate) = gate.filter(|_| !PASSED_GATE.get()) {
            PASSED_GATE.set(true);
            gate.wait();
        }
    }

    fn gate(&self, contenders: usize) {
        *self.inner.gate.lock().unwrap() = Some(Arc::new(Barrier::new(contenders)));
    }
}

thread_local! {
    static PASSED_GATE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A `cas` handle: the key and what `current()` returned.
struct Handle {
    key: String,
    seen: Option<Vec<u8>>,
}

impl Bucket for Fake {
    type Cas = Handle;

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.raw(key))
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.inner
            .map
            .lock()
            .unwrap()
            .insert(key.into(), value.to_vec());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), KvError> {
        self.inner.map.lock().unwrap().remove(key);
        Ok(())
    }

    fn increment(&self, key: &str) -> Result<i64, KvError> {
        self.wait_at_gate();
        let mut map = self.inner.map.lock().unwrap();
        let old = match map.get(key) {
            Some(bytes) => i64::from_le_bytes(bytes.as_slice().try_into().expect("a counter")),
            None => 0,
        };
        map.insert(key.into(), (old + 1).to_le_bytes().to_vec());
        Ok(old + 1)
    }

    fn read(&self, key: &str) -> Result<Read<Handle>, KvError> {
        let nth = self.inner.reads.fetch_add(1, Ordering::SeqCst) + 1;
        if nth == self.inner.failing_read.load(Ordering::SeqCst) {
            return Err(KvError("read failed".into()));
        }
        let seen = self.raw(key);
        let handle = (self.atomics != Atomics::IncrementOnly).then(|| Handle {
            key: key.into(),
            seen: seen.clone(),
        });
        Ok((seen, handle))
    }

    fn swap(&self, cas: Handle, value: &[u8]) -> Result<bool, KvError> {
        assert_ne!(self.atomics, Atomics::IncrementOnly, "draft has no cas");
        self.wait_at_gate();
        let mut map = self.inner.map.lock().unwrap();
        let blind = self.atomics == Atomics::SpinUpsertCas && cas.seen.is_none();
        if !blind && map.get(&cas.key) != cas.seen.as_ref() {
            return Ok(false);
        }
        map.insert(cas.key, value.to_vec());
        Ok(true)
    }

    fn now_ms(&self) -> u64 {
        self.inner.now_ms.load(Ordering::SeqCst)
    }

    fn nonce(&self) -> u64 {
        self.inner.nonce.fetch_add(1, Ordering::SeqCst)
    }
}

const ALL: [Atomics; 3] = [
    Atomics::ExactCas,
    Atomics::SpinUpsertCas,
    Atomics::IncrementOnly,
];
const KEY: &str = "mangopay-auth/v1/lease/abc";
const TTL: Duration = Duration::from_secs(10);

#[test]
fn envelopes_round_trip_and_hide_their_value() {
    let envelope = Envelope {
        expires_at_ms: 1_800_000_010_000,
        nonce: 0xabc,
        value: b"tok en".to_vec(),
    };
    let bytes = envelope.encode();
    assert!(bytes.starts_with(b"mpkv1 1800000010000 0000000000000abc "));
    assert_eq!(Envelope::decode(&bytes), Some(envelope.clone()));
    assert!(!format!("{envelope:?}").contains("tok"));
    assert_eq!(
        envelope.clone().live(1_800_000_009_999),
        Some(b"tok en".to_vec())
    );
    assert_eq!(envelope.live(1_800_000_010_000), None);
    for foreign in [
        &b""[..],
        b"tok",
        b"mpkv1 ",
        b"mpkv1 12 0000000000000abc",
        b"mpkv1 x 0000000000000abc v",
        b"mpkv1 12 00000000000abc v",
        b"mpkv1 99999999999999999999999 0000000000000abc v",
        b"mpkv2 12 0000000000000abc v",
    ] {
        assert_eq!(Envelope::decode(foreign), None, "{foreign:?}");
    }
}

#[test]
fn the_bucket_label_defaults_to_the_platforms_default_store() {
    assert_eq!(bucket_label(None), "default");
    assert_eq!(bucket_label(Some("  ")), "default");
    assert_eq!(bucket_label(Some(" tokens ")), "tokens");
}

#[test]
fn compare_and_swap_keeps_token_store_semantics_on_every_platform() {
    for atomics in ALL {
        let fake = Fake::new(atomics);
        let store = KeyValueStore::new(fake.clone());
        assert_eq!(store.get(KEY), Ok(None));
        assert_eq!(
            store.compare_and_swap(KEY, Some(b"x"), b"a", TTL),
            Ok(false)
        );
        assert_eq!(
            store.compare_and_swap(KEY, None, b"a", TTL),
            Ok(true),
            "{atomics:?}"
        );
        assert_eq!(store.get(KEY), Ok(Some(b"a".to_vec())));
        assert_eq!(store.compare_and_swap(KEY, None, b"b", TTL), Ok(false));
        assert_eq!(
            store.compare_and_swap(KEY, Some(b"b"), b"c", TTL),
            Ok(false)
        );
        assert_eq!(store.compare_and_swap(KEY, Some(b"a"), b"b", TTL), Ok(true));
        assert_eq!(store.get(KEY), Ok(Some(b"b".to_vec())));
        // Deleted: a tombstone, read as absent, replaced like one.
        assert_eq!(store.delete(KEY), Ok(()));
        assert!(fake.raw(KEY).is_some());
        assert_eq!(store.get(KEY), Ok(None));
        assert_eq!(store.compare_and_swap(KEY, None, b"d", TTL), Ok(true));
        // Expired: absent.
        fake.advance_ms(10_000);
        assert_eq!(store.get(KEY), Ok(None));
        assert_eq!(
            store.compare_and_swap(KEY, Some(b"d"), b"e", TTL),
            Ok(false)
        );
        assert_eq!(store.compare_and_swap(KEY, None, b"e", TTL), Ok(true));
        // No election counter is left behind.
        assert_eq!(fake.keys(), [KEY], "{atomics:?}");
    }
}

#[test]
fn a_foreign_value_reads_as_absent_and_is_replaced() {
    for atomics in ALL {
        let fake = Fake::new(atomics);
        let store = KeyValueStore::new(fake.clone());
        fake.set(KEY, b"not ours").unwrap();
        assert_eq!(store.get(KEY), Ok(None));
        assert_eq!(store.compare_and_swap(KEY, None, b"a", TTL), Ok(true));
        assert_eq!(store.get(KEY), Ok(Some(b"a".to_vec())));
    }
}

/// `contenders` threads that all read `KEY` before any of them votes or swaps, each trying
/// to take it from absent: how many believe they won.
fn race(fake: &Fake, contenders: usize) -> usize {
    fake.gate(contenders);
    let winners: Vec<bool> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..contenders)
            .map(|i| {
                let store = KeyValueStore::new(fake.clone());
                scope.spawn(move || {
                    let value = format!("lease-{i}");
                    store
                        .compare_and_swap(KEY, None, value.as_bytes(), TTL)
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    winners.into_iter().filter(|won| *won).count()
}

#[test]
fn sixteen_cold_writers_elect_exactly_one_on_every_platform() {
    for atomics in ALL {
        let fake = Fake::new(atomics);
        assert_eq!(race(&fake, 16), 1, "{atomics:?}: first creation");
        assert_eq!(fake.keys(), [KEY], "{atomics:?}");
        // Again over a tombstone (the lease released) and over an expired lease.
        KeyValueStore::new(fake.clone()).delete(KEY).unwrap();
        assert_eq!(race(&fake, 16), 1, "{atomics:?}: after release");
        fake.advance_ms(10_000);
        assert_eq!(race(&fake, 16), 1, "{atomics:?}: after expiry");
    }
}

#[test]
fn spins_blind_upsert_would_let_every_cold_writer_win_without_the_election() {
    // What the fake models, and why creation is elected: each writer's own `cas` on an
    // absent key succeeds.
    let fake = Fake::new(Atomics::SpinUpsertCas);
    fake.gate(16);
    let winners = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let fake = fake.clone();
                scope.spawn(move || {
                    let (_, cas) = fake.read(KEY).unwrap();
                    fake.swap(cas.unwrap(), b"mine").unwrap()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|w| *w)
            .count()
    });
    assert_eq!(winners, 16);
}

#[test]
fn an_election_keeps_one_winner_up_to_its_span_and_at_most_two_past_it() {
    for atomics in [Atomics::SpinUpsertCas, Atomics::IncrementOnly] {
        let span = usize::try_from(ELECTION_SPAN).unwrap();
        assert_eq!(race(&Fake::new(atomics), span), 1, "{atomics:?}");
        let winners = race(&Fake::new(atomics), span + 1);
        assert!((1..=2).contains(&winners), "{atomics:?}: {winners}");
    }
}

#[test]
fn a_writer_that_died_mid_election_is_replaced_after_the_span() {
    for atomics in [Atomics::SpinUpsertCas, Atomics::IncrementOnly] {
        let fake = Fake::new(atomics);
        let store = KeyValueStore::new(fake.clone());
        // The elected writer took ticket 1 and died before writing.
        fake.increment(&election_key(KEY, None)).unwrap();
        for _ in 2..=ELECTION_SPAN {
            assert_eq!(store.compare_and_swap(KEY, None, b"a", TTL), Ok(false));
        }
        assert_eq!(store.compare_and_swap(KEY, None, b"a", TTL), Ok(true));
        assert_eq!(store.get(KEY), Ok(Some(b"a".to_vec())));
        assert_eq!(fake.keys(), [KEY], "the counter is cleaned up");
    }
}

#[test]
fn an_election_whose_second_read_fails_leaves_no_counter_behind() {
    for atomics in [Atomics::SpinUpsertCas, Atomics::IncrementOnly] {
        let fake = Fake::new(atomics);
        let store = KeyValueStore::new(fake.clone());
        // The elected writer's look again fails: an error, and the counter is gone.
        fake.inner.failing_read.store(2, Ordering::SeqCst);
        assert!(store.compare_and_swap(KEY, None, b"a", TTL).is_err());
        assert_eq!(fake.keys(), Vec::<String>::new(), "{atomics:?}");
        // So the next writer on this value is elected.
        assert_eq!(store.compare_and_swap(KEY, None, b"a", TTL), Ok(true));
    }
}

#[test]
fn a_latecomer_after_the_counter_was_cleaned_up_does_not_overwrite() {
    for atomics in [Atomics::SpinUpsertCas, Atomics::IncrementOnly] {
        let fake = Fake::new(atomics);
        let store = KeyValueStore::new(fake.clone());
        // The latecomer read "absent", then the winner created the key and deleted the
        // counter; the latecomer's vote now gets ticket 1 again.
        let (physical, cas) = fake.read(KEY).unwrap();
        assert_eq!(store.compare_and_swap(KEY, None, b"winner", TTL), Ok(true));
        assert_eq!(
            store.replace(KEY, physical.as_deref(), cas, b"late"),
            Ok(false)
        );
        assert_eq!(store.get(KEY), Ok(Some(b"winner".to_vec())));
    }
}

#[test]
fn clients_on_a_keyvalue_bucket_share_one_token() {
    for atomics in ALL {
        let (transport, clock, _) = shared_parts();
        transport.answer(200, &token_body("tok-1", 1200));
        let fake = Fake::new(atomics);
        let clients: Vec<_> = (0..5)
            .map(|_| {
                crate::Client::with_store(
                    config(),
                    transport.clone(),
                    clock.clone(),
                    Box::new(KeyValueStore::new(fake.clone())),
                )
                .unwrap()
            })
            .collect();
        for client in &clients {
            assert_eq!(client.get_token().unwrap().access_token, "tok-1");
        }
        assert_eq!(transport.sent(), 1, "{atomics:?}");
        // The stored token is wrapped with an expiry; nothing else is left but the lease's
        // tombstone.
        assert_eq!(fake.keys().len(), 2, "{atomics:?}: {:?}", fake.keys());
    }
}

#[test]
fn spin_variables_override_the_environment() {
    let host = vec![
        ("PATH".to_owned(), "/bin".to_owned()),
        ("MANGOPAY_CLIENT_ID".to_owned(), "from-env".to_owned()),
        ("MANGOPAY_ENVIRONMENT".to_owned(), "sandbox".to_owned()),
    ];
    let env = spin_environment(host, |name| match name {
        "mangopay_client_id" => Some("from-spin".into()),
        "mangopay_api_key" => Some("key".into()),
        _ => None,
    });
    let get = |name: &str| {
        let values: Vec<&str> = env
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect();
        values
    };
    assert_eq!(get("MANGOPAY_CLIENT_ID"), ["from-spin"]);
    assert_eq!(get("MANGOPAY_API_KEY"), ["key"]);
    assert_eq!(get("MANGOPAY_ENVIRONMENT"), ["sandbox"]);
    assert_eq!(get("PATH"), ["/bin"]);
    assert!(get("MANGOPAY_BASE_URL").is_empty());
}
