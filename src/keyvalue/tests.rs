use super::*;
use crate::fakes::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Instant;

/// A bucket with exact `get` and `set` (every backend's), a wall clock that moves when told,
/// the real monotonic clock, and faults: a stalled `set`, a failing operation.
#[derive(Default)]
struct Inner {
    map: Mutex<HashMap<String, Vec<u8>>>,
    now_ms: AtomicU64,
    nonce: AtomicU64,
    /// Contenders wait here before their first `set`: all have checked before any writes.
    gate: Mutex<Option<Arc<Barrier>>>,
    ops: AtomicU64,
    /// The operation that fails, counted from 1 (0: none).
    failing_op: AtomicU64,
}

#[derive(Clone)]
struct Fake {
    inner: Arc<Inner>,
    /// The real monotonic clock from here; `None`: frozen, and sleeping takes no time
    /// (tests where no write races).
    origin: Option<Instant>,
}

/// How this thread's next `set` stalls.
#[derive(Clone, Copy)]
enum Stall {
    None,
    /// The write lands this late (the store was slow to apply it).
    BeforeApplying(Duration),
    /// The write lands at once, its answer this late.
    AfterApplying(Duration),
}

thread_local! {
    static PASSED_GATE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static STALL: std::cell::Cell<Stall> = const { std::cell::Cell::new(Stall::None) };
}

impl Fake {
    fn new() -> Fake {
        let fake = Fake {
            inner: Arc::default(),
            origin: Some(Instant::now()),
        };
        fake.inner.now_ms.store(1_800_000_000_000, Ordering::SeqCst);
        fake
    }

    fn frozen() -> Fake {
        frozen(&Fake::new())
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

    fn gate(&self, contenders: usize) {
        *self.inner.gate.lock().unwrap() = Some(Arc::new(Barrier::new(contenders)));
    }

    fn fail_op(&self, nth: u64) {
        self.inner.ops.store(0, Ordering::SeqCst);
        self.inner.failing_op.store(nth, Ordering::SeqCst);
    }

    fn op(&self) -> Result<(), KvError> {
        let nth = self.inner.ops.fetch_add(1, Ordering::SeqCst) + 1;
        match nth == self.inner.failing_op.load(Ordering::SeqCst) {
            true => Err(KvError("connection refused".into())),
            false => Ok(()),
        }
    }
}

/// The fake's clocks: its wall time, and the real monotonic clock unless frozen.
impl Clock for Fake {
    fn monotonic(&self) -> Duration {
        self.origin.map_or(Duration::ZERO, |o| o.elapsed())
    }

    fn wall(&self) -> Duration {
        Duration::from_millis(self.inner.now_ms.load(Ordering::SeqCst))
    }

    fn sleep(&self, duration: Duration) {
        if self.origin.is_some() {
            std::thread::sleep(duration);
        }
    }
}

impl Bucket for Fake {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.op()?;
        Ok(self.raw(key))
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.op()?;
        let gate = self.inner.gate.lock().unwrap().clone();
        if let Some(gate) = gate.filter(|_| !PASSED_GATE.get()) {
            PASSED_GATE.set(true);
            gate.wait();
        }
        let stall = STALL.replace(Stall::None);
        if let Stall::BeforeApplying(d) = stall {
            std::thread::sleep(d);
        }
        self.inner
            .map
            .lock()
            .unwrap()
            .insert(key.into(), value.to_vec());
        if let Stall::AfterApplying(d) = stall {
            std::thread::sleep(d);
        }
        Ok(())
    }

    fn nonce(&self) -> u64 {
        self.inner.nonce.fetch_add(1, Ordering::SeqCst)
    }
}

/// The same bucket, its monotonic clock frozen: a write that races nothing wins whatever the
/// machine's load.
fn frozen(fake: &Fake) -> Fake {
    Fake {
        inner: fake.inner.clone(),
        origin: None,
    }
}

const KEY: &str = "mangopay-auth/v1/lease/abc";
const TTL: Duration = Duration::from_secs(10);
/// Long beside a check and a write on the fake (microseconds), so that a loaded machine
/// rarely makes a writer late.
const SETTLE_TEST: Duration = Duration::from_millis(100);

fn store(fake: &Fake) -> KeyValueStore<Fake, Fake> {
    KeyValueStore::with_settle(fake.clone(), fake.clone(), SETTLE_TEST)
}

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
fn the_bucket_label_defaults_to_the_platforms_default_store_and_can_be_empty() {
    assert_eq!(bucket_label(None), "default");
    assert_eq!(bucket_label(Some(" tokens ")), "tokens");
    // `wasmtime serve -S keyvalue` opens only "".
    assert_eq!(bucket_label(Some("")), "");
    assert_eq!(bucket_label(Some("  ")), "");
}

#[test]
fn the_missing_store_error_names_each_hosts_fix() {
    let KvError(text) = KvError::no_such_store("default");
    assert!(text.contains("key_value_stores"), "{text}");
    assert!(text.contains("wasmtime serve"), "{text}");
    assert!(text.contains("MANGOPAY_AUTH_KV_BUCKET= empty"), "{text}");
}

#[test]
fn compare_and_swap_keeps_token_store_semantics() {
    let fake = Fake::frozen();
    let store = store(&fake);
    assert_eq!(store.get(KEY), Ok(None));
    assert_eq!(
        store.compare_and_swap(KEY, Some(b"x"), b"a", TTL),
        Ok(false)
    );
    assert_eq!(store.compare_and_swap(KEY, None, b"a", TTL), Ok(true));
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
    // Nothing but the key itself: no counter, no marker.
    assert_eq!(fake.keys(), [KEY]);
}

#[test]
fn a_foreign_value_reads_as_absent_and_is_replaced() {
    let fake = Fake::frozen();
    let store = store(&fake);
    fake.set(KEY, b"not ours").unwrap();
    assert_eq!(store.get(KEY), Ok(None));
    assert_eq!(store.compare_and_swap(KEY, None, b"a", TTL), Ok(true));
    assert_eq!(store.get(KEY), Ok(Some(b"a".to_vec())));
}

/// `contenders` threads that all check `KEY` before any of them writes, each trying to
/// replace what it holds (`expected`): the values of those who believe they won.
fn race(fake: &Fake, contenders: usize, expected: Option<&[u8]>) -> Vec<String> {
    fake.gate(contenders);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..contenders)
            .map(|i| {
                let store = store(fake);
                scope.spawn(move || {
                    let value = format!("lease-{i}");
                    let won = store
                        .compare_and_swap(KEY, expected, value.as_bytes(), TTL)
                        .unwrap();
                    won.then_some(value)
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect()
    })
}

/// Never two winners. A race may end with none (every writer's check and write took longer
/// than the settling time: a loaded machine), never with two; over five races, some win.
#[test]
fn sixteen_writers_racing_on_an_absent_or_a_present_value_make_at_most_one_winner() {
    for present in [false, true] {
        let mut won = 0;
        for _ in 0..5 {
            let fake = Fake::new();
            let store = store(&fake);
            if present {
                let seed = KeyValueStore::with_settle(frozen(&fake), frozen(&fake), SETTLE_TEST);
                assert_eq!(seed.compare_and_swap(KEY, None, b"old", TTL), Ok(true));
            }
            let expected = present.then_some(&b"old"[..]);
            let winners = race(&fake, 16, expected);
            assert!(winners.len() <= 1, "present {present}: {winners:?}");
            if let [winner] = winners.as_slice() {
                // The winner's value is what the store holds.
                assert_eq!(store.get(KEY), Ok(Some(winner.clone().into_bytes())));
                won += 1;
            }
        }
        assert!(won > 0, "present {present}: no race had a winner");
    }
}

#[test]
fn a_write_the_store_applied_late_never_wins_beside_the_timely_winner() {
    // A checks, then its write stalls 5 settles before it lands; B checks too, writes at
    // once and reads its own value back: B won. A's late write then lands over B's and A
    // reads its own value back, yet its check was too long before its write to prove
    // anything: it loses.
    let fake = Fake::new();
    let winners: Vec<&str> = {
        fake.gate(2);
        std::thread::scope(|scope| {
            let late = scope.spawn(|| {
                STALL.set(Stall::BeforeApplying(SETTLE_TEST * 5));
                let won = store(&fake).compare_and_swap(KEY, None, b"late", TTL);
                won.unwrap().then_some("late")
            });
            let timely = scope.spawn(|| {
                let won = store(&fake).compare_and_swap(KEY, None, b"timely", TTL);
                won.unwrap().then_some("timely")
            });
            [late.join().unwrap(), timely.join().unwrap()]
                .into_iter()
                .flatten()
                .collect()
        })
    };
    assert_eq!(winners, ["timely"]);
    // The late value is what the store holds: read back alone, it would have been a second
    // winner.
    assert_eq!(store(&fake).get(KEY), Ok(Some(b"late".to_vec())));
}

#[test]
fn a_write_answered_late_loses_and_the_caller_looks_again() {
    let fake = Fake::new();
    STALL.set(Stall::AfterApplying(SETTLE_TEST * 2));
    assert_eq!(
        store(&fake).compare_and_swap(KEY, None, b"slow", TTL),
        Ok(false)
    );
    // What it left is an ordinary value: the next writer replaces it like any other.
    assert_eq!(
        store(&frozen(&fake)).compare_and_swap(KEY, Some(b"slow"), b"next", TTL),
        Ok(true)
    );
}

#[test]
fn only_a_store_that_fails_is_an_error_a_lost_race_is_not() {
    // The check, the write, the read back: each failing is the store's failure.
    for nth in 1..=3 {
        let fake = Fake::new();
        fake.fail_op(nth);
        let failed = store(&fake).compare_and_swap(KEY, None, b"a", TTL);
        assert_eq!(
            failed,
            Err(KvError("connection refused".into())),
            "op {nth}"
        );
    }
    // Another writer replaced the value between the write and the read back: lost, Ok.
    let fake = Fake::new();
    let rival = fake.clone();
    STALL.set(Stall::AfterApplying(Duration::ZERO));
    let store = store(&fake);
    std::thread::scope(|scope| {
        let racer = scope.spawn(|| store.compare_and_swap(KEY, None, b"mine", TTL));
        std::thread::sleep(SETTLE_TEST / 2);
        rival.set(KEY, b"theirs").unwrap();
        assert_eq!(racer.join().unwrap(), Ok(false));
    });
}

#[test]
fn a_day_of_renewals_leaves_three_keys() {
    let fake = Fake::frozen();
    let store = store(&fake);
    let keys = ["t/token/x", "t/lease/x", "t/cool-down/x"];
    // 72 renewals of 20-minute tokens, each a lease taken and released, a token published,
    // and now and then a cool-down or a refused token.
    for renewal in 0..72u32 {
        let lease = format!("lease-{renewal}").into_bytes();
        assert_eq!(store.compare_and_swap(keys[1], None, &lease, TTL), Ok(true));
        // The previous token has expired: it reads as absent.
        let new = format!("token-{renewal}").into_bytes();
        assert_eq!(
            store.compare_and_swap(keys[0], None, &new, TTL * 100),
            Ok(true)
        );
        if renewal % 7 == 0 {
            assert_eq!(
                store.compare_and_swap(keys[2], None, b"pause", TTL),
                Ok(true)
            );
            assert_eq!(store.delete(keys[2]), Ok(()));
        }
        assert_eq!(store.delete(keys[1]), Ok(()));
        fake.advance_ms(20 * 60 * 1000);
    }
    let mut expected = keys.map(String::from).to_vec();
    expected.sort();
    assert_eq!(fake.keys(), expected);
}

#[test]
fn clients_on_a_keyvalue_bucket_share_one_token() {
    let (transport, clock, _) = shared_parts();
    transport.answer(200, &token_body("tok-1", 1200));
    let fake = Fake::frozen();
    let clients: Vec<_> = (0..5)
        .map(|_| {
            crate::Client::with_store(
                config(),
                transport.clone(),
                clock.clone(),
                Box::new(store(&fake)),
            )
            .unwrap()
        })
        .collect();
    for client in &clients {
        assert_eq!(client.get_token().unwrap().access_token, "tok-1");
    }
    assert_eq!(transport.sent(), 1);
    // The stored token, wrapped with an expiry, and the released lease.
    assert_eq!(fake.keys().len(), 2, "{:?}", fake.keys());
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
