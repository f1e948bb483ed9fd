//! Host implementations of `mangopay:auth/token-store`: an in-process map shared by many
//! instances, and Redis, shared by host processes. Plus a throwaway `redis-server` for tests.

use crate::clock::VirtualClock;
use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the component's `token-store` import calls. Errors are texts for the component.
/// A host state that may hold a token store; `token_store_host!` makes it implement the
/// `token-store` import over it.
pub trait WithHostStore {
    fn host_store(&self) -> Option<&Arc<dyn HostStore>>;

    /// The store, or why the import fails.
    fn held_store(&self) -> Result<&Arc<dyn HostStore>, String> {
        self.host_store()
            .ok_or_else(|| "this host has no token store".to_owned())
    }
}

/// `impl token_store::Host for $state` over its [`WithHostStore`] (a blanket impl would
/// collide with bindgen's own for `&mut T`).
macro_rules! token_store_host {
    ($state:ty) => {
        impl $crate::host::bindings::mangopay::auth::token_store::Host for $state {
            fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, String> {
                use $crate::store::WithHostStore;
                self.held_store()?.get(&key)
            }

            fn compare_and_swap(
                &mut self,
                key: String,
                expected: Option<Vec<u8>>,
                value: Vec<u8>,
                ttl_ms: u64,
            ) -> Result<bool, String> {
                use $crate::store::WithHostStore;
                let ttl = std::time::Duration::from_millis(ttl_ms);
                self.held_store()?
                    .compare_and_swap(&key, expected.as_deref(), &value, ttl)
            }

            fn delete(&mut self, key: String) -> Result<(), String> {
                use $crate::store::WithHostStore;
                self.held_store()?.delete(&key)
            }
        }
    };
}
pub(crate) use token_store_host;

pub trait HostStore: Send + Sync {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String>;
    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, String>;
    fn delete(&self, key: &str) -> Result<(), String>;
}

/// A map in this process; entries expire on the virtual wall clock.
pub struct MapStore {
    entries: Mutex<HashMap<String, (Vec<u8>, Duration)>>,
    clock: VirtualClock,
}

impl MapStore {
    pub fn new(clock: VirtualClock) -> MapStore {
        MapStore {
            entries: Mutex::new(HashMap::new()),
            clock,
        }
    }

    /// Writes a raw value, as a foreign writer or a corrupting bug would.
    pub fn put_raw(&self, key: &str, value: &[u8]) {
        let expires = self.clock.wall() + Duration::from_secs(86_400);
        let mut entries = self.entries.lock().expect("store");
        entries.insert(key.to_owned(), (value.to_vec(), expires));
    }

    /// Every live entry, key and value.
    pub fn entries(&self) -> Vec<(String, Vec<u8>)> {
        let now = self.clock.wall();
        let entries = self.entries.lock().expect("store");
        let live = entries.iter().filter(|(_, (_, expires))| *expires > now);
        live.map(|(k, (v, _))| (k.clone(), v.clone())).collect()
    }
}

impl HostStore for MapStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        let now = self.clock.wall();
        let entries = self.entries.lock().map_err(|e| e.to_string())?;
        Ok(entries
            .get(key)
            .filter(|(_, expires)| *expires > now)
            .map(|(value, _)| value.clone()))
    }

    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, String> {
        let now = self.clock.wall();
        let mut entries = self.entries.lock().map_err(|e| e.to_string())?;
        let current = entries
            .get(key)
            .filter(|(_, expires)| *expires > now)
            .map(|(value, _)| value.as_slice());
        if current != expected {
            return Ok(false);
        }
        entries.insert(key.to_owned(), (value.to_vec(), now + ttl));
        Ok(true)
    }

    fn delete(&self, key: &str) -> Result<(), String> {
        self.entries.lock().map_err(|e| e.to_string())?.remove(key);
        Ok(())
    }
}

/// A map store whose writes of token entries fail with a text made from what it was given,
/// as a careless store's error messages echo keys and values.
pub struct EchoingStore {
    inner: MapStore,
    echo: fn(&str, &[u8]) -> String,
}

impl EchoingStore {
    pub fn new(clock: VirtualClock, echo: fn(&str, &[u8]) -> String) -> EchoingStore {
        EchoingStore {
            inner: MapStore::new(clock),
            echo,
        }
    }
}

impl HostStore for EchoingStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.inner.get(key)
    }

    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, String> {
        if key.contains("/token/") {
            return Err((self.echo)(key, value));
        }
        self.inner.compare_and_swap(key, expected, value, ttl)
    }

    fn delete(&self, key: &str) -> Result<(), String> {
        self.inner.delete(key)
    }
}

/// Redis, one short connection per operation so that a restarted server is picked up at once.
/// Entries expire on Redis's own (real) clock; the component checks expiry itself.
pub struct RedisStore {
    client: redis::Client,
}

/// Sets KEYS[1] to ARGV[3] for ARGV[4] ms if its value is ARGV[2] (ARGV[1] = "1"), or if it
/// is absent (ARGV[1] = "0"). Atomic: Redis runs a script alone.
const CAS: &str = r#"
local current = redis.call('GET', KEYS[1])
if (ARGV[1] == '0' and current == false) or (ARGV[1] == '1' and current == ARGV[2]) then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
  return 1
end
return 0
"#;

/// Long enough that a loaded machine (a test run beside a build) does not turn a slow answer
/// into a store failure and an extra token request; a stopped Redis refuses at once anyway.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// One short connection per operation, bounded by `REDIS_TIMEOUT`, so a Redis that stops
/// answering fails an operation instead of hanging the instance.
pub fn redis_connection(client: &redis::Client) -> Result<redis::Connection, String> {
    let connection = client
        .get_connection_with_timeout(REDIS_TIMEOUT)
        .map_err(|e| format!("redis: {e}"))?;
    connection
        .set_read_timeout(Some(REDIS_TIMEOUT))
        .and_then(|()| connection.set_write_timeout(Some(REDIS_TIMEOUT)))
        .map_err(|e| format!("redis: {e}"))?;
    Ok(connection)
}

impl RedisStore {
    pub fn new(url: &str) -> RedisStore {
        RedisStore {
            client: redis::Client::open(url).expect("a valid redis URL"),
        }
    }

    fn connection(&self) -> Result<redis::Connection, String> {
        redis_connection(&self.client)
    }
}

impl HostStore for RedisStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        redis::cmd("GET")
            .arg(key)
            .query(&mut self.connection()?)
            .map_err(|e| format!("redis: {e}"))
    }

    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, String> {
        let ttl_ms = ttl.as_millis().max(1) as u64;
        let set: i64 = redis::cmd("EVAL")
            .arg(CAS)
            .arg(1)
            .arg(key)
            .arg(if expected.is_some() { "1" } else { "0" })
            .arg(expected.unwrap_or_default())
            .arg(value)
            .arg(ttl_ms)
            .query(&mut self.connection()?)
            .map_err(|e| format!("redis: {e}"))?;
        Ok(set == 1)
    }

    fn delete(&self, key: &str) -> Result<(), String> {
        redis::cmd("DEL")
            .arg(key)
            .query::<i64>(&mut self.connection()?)
            .map(drop)
            .map_err(|e| format!("redis: {e}"))
    }
}

/// A `redis-server` on 127.0.0.1 for one test, without persistence. Stopped on drop.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port; installs Debian's redis-server first where it is
    /// missing and this runs as root (a fresh machine), so the test command needs no set-up.
    pub fn start() -> RedisServer {
        ensure_redis_server();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = RedisServer { port, child: None };
        server.resume();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Stops the server (its data goes with it).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn resume(&mut self) {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            // The fault tests stall it with DEBUG SLEEP.
            .args(["--enable-debug-command", "local"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Tied to the test binary: a server a `static` holds outlives every test thread.
        let child = crate::process::spawn_tied(command).expect("redis-server starts");
        self.child = Some(child);
        let store = RedisStore::new(&self.url());
        let started = Instant::now();
        while store.get("ping").is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not answer on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// redis-server on PATH, installed with Debian's apt-get where it is missing (a fresh
/// machine; as root), once per run whatever the number of tests or processes that start one
/// at the same time (`xtask::install::once`). Panics with what to run by hand when it cannot.
pub fn ensure_redis_server() {
    let found = || xtask::install::runs("redis-server").then_some(());
    let installed = xtask::install::once(
        "redis-server",
        found,
        || xtask::install::apt_get("redis-server"),
        "apt-get install redis-server (as root), or put a redis-server on PATH",
    );
    if let Err(e) = installed {
        panic!("these tests need redis-server on the PATH: {e}");
    }
}
