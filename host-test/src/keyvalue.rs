//! Host implementations of wasi:keyvalue as the platforms provide it: `0.2.0-draft2` (Spin:
//! store, `atomics.cas`, increment) and `0.2.0-draft` (wasmCloud: store, increment only), over
//! one backend shared by every instance: an in-process map, or Redis shared by host
//! processes. Plus the `wasi:config/store` Spin links beside it. The adapters use only
//! `store` (get and set); the atomics stay for the harness's own tests of the platforms'
//! behaviour (the Spin upsert switch).
//!
//! Neither draft has a TTL: values live until deleted, and the component checks expiry itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use wasmtime::component::{Linker, Resource, ResourceTable};

pub mod draft2 {
    wasmtime::component::bindgen!({
        path: "../vendor/wit/wasi-keyvalue-0.2.0-draft2",
        world: "wasi:keyvalue/imports@0.2.0-draft2",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": super::Bucket,
            "wasi:keyvalue/atomics.cas": super::Cas,
        },
    });
}

pub mod draft {
    wasmtime::component::bindgen!({
        path: "../vendor/wit/wasi-keyvalue-0.2.0-draft",
        world: "wasi:keyvalue/imports@0.2.0-draft",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": super::DraftBucket,
        },
    });
}

pub mod config {
    wasmtime::component::bindgen!({
        path: "../vendor/wit/wasi-config-0.2.0-draft-2024-09-27",
        world: "wasi:config/imports@0.2.0-draft-2024-09-27",
        imports: { default: async | trappable },
    });
}

/// The storage behind both versions. Errors are texts for the component.
pub trait KvBackend: Send + Sync {
    fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, String>;
    fn set(&self, bucket: &str, key: &str, value: &[u8]) -> Result<(), String>;
    fn delete(&self, bucket: &str, key: &str) -> Result<(), String>;
    fn keys(&self, bucket: &str) -> Result<Vec<String>, String>;
    /// Adds `delta` to the decimal number under `key` (absent: 0) atomically; the new value.
    fn increment(&self, bucket: &str, key: &str, delta: i64) -> Result<i64, String>;
    /// Sets `key` to `value` if it still holds `seen` (`None`: still absent); `false` when
    /// another writer came first.
    fn swap(
        &self,
        bucket: &str,
        key: &str,
        seen: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, String>;
}

/// (bucket, key) → value.
type Entries = HashMap<(String, String), Vec<u8>>;

/// One map in this process, shared by every instance that holds a clone.
#[derive(Clone, Default)]
pub struct MapKv {
    entries: Arc<Mutex<Entries>>,
    /// Spin's SQLite store: a `swap` whose `cas` saw no value writes without any check.
    spin_upsert: bool,
}

impl MapKv {
    pub fn new() -> MapKv {
        MapKv::default()
    }

    /// A map whose `swap` of an absent key upserts unconditionally, as Spin's SQLite store
    /// does.
    pub fn with_spin_upsert() -> MapKv {
        MapKv {
            spin_upsert: true,
            ..MapKv::default()
        }
    }

    /// Every entry, (bucket, key) and value.
    pub fn entries(&self) -> Vec<((String, String), Vec<u8>)> {
        let entries = self.entries.lock().expect("kv map");
        entries
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Entries>, String> {
        self.entries.lock().map_err(|e| e.to_string())
    }
}

fn entry(bucket: &str, key: &str) -> (String, String) {
    (bucket.to_owned(), key.to_owned())
}

fn parse_counter(value: Option<&Vec<u8>>) -> Result<i64, String> {
    value.map_or(Ok(0), |v| {
        String::from_utf8_lossy(v)
            .parse::<i64>()
            .map_err(|e| format!("not a counter: {e}"))
    })
}

impl KvBackend for MapKv {
    fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self.lock()?.get(&entry(bucket, key)).cloned())
    }

    fn set(&self, bucket: &str, key: &str, value: &[u8]) -> Result<(), String> {
        self.lock()?.insert(entry(bucket, key), value.to_vec());
        Ok(())
    }

    fn delete(&self, bucket: &str, key: &str) -> Result<(), String> {
        self.lock()?.remove(&entry(bucket, key));
        Ok(())
    }

    fn keys(&self, bucket: &str) -> Result<Vec<String>, String> {
        let entries = self.lock()?;
        let keys = entries.keys().filter(|(b, _)| b == bucket);
        Ok(keys.map(|(_, k)| k.clone()).collect())
    }

    fn increment(&self, bucket: &str, key: &str, delta: i64) -> Result<i64, String> {
        let mut entries = self.lock()?;
        let next = parse_counter(entries.get(&entry(bucket, key)))?
            .checked_add(delta)
            .ok_or("counter overflow")?;
        entries.insert(entry(bucket, key), next.to_string().into_bytes());
        Ok(next)
    }

    fn swap(
        &self,
        bucket: &str,
        key: &str,
        seen: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, String> {
        let mut entries = self.lock()?;
        let current = entries.get(&entry(bucket, key)).map(Vec::as_slice);
        if current != seen && !(self.spin_upsert && seen.is_none()) {
            return Ok(false);
        }
        entries.insert(entry(bucket, key), value.to_vec());
        Ok(true)
    }
}

/// Redis, one short connection per operation (a restarted server is picked up at once).
/// `swap` is a Lua script, so the check and the write are one step for Redis.
pub struct RedisKv {
    client: redis::Client,
}

/// Sets KEYS[1] to ARGV[3] if its value is ARGV[2] (ARGV[1] = "1") or it is absent
/// (ARGV[1] = "0"). No TTL: wasi:keyvalue has none.
const SWAP: &str = r#"
local current = redis.call('GET', KEYS[1])
if (ARGV[1] == '0' and current == false) or (ARGV[1] == '1' and current == ARGV[2]) then
  redis.call('SET', KEYS[1], ARGV[3])
  return 1
end
return 0
"#;

impl RedisKv {
    pub fn new(url: &str) -> RedisKv {
        RedisKv {
            client: redis::Client::open(url).expect("a valid redis URL"),
        }
    }

    fn connection(&self) -> Result<redis::Connection, String> {
        crate::store::redis_connection(&self.client)
    }

    fn query<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Result<T, String> {
        command
            .query(&mut self.connection()?)
            .map_err(|e| format!("redis: {e}"))
    }
}

/// The Redis key of a bucket's key.
fn redis_key(bucket: &str, key: &str) -> String {
    format!("kv/{bucket}/{key}")
}

impl KvBackend for RedisKv {
    fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.query(redis::cmd("GET").arg(redis_key(bucket, key)))
    }

    fn set(&self, bucket: &str, key: &str, value: &[u8]) -> Result<(), String> {
        self.query::<()>(redis::cmd("SET").arg(redis_key(bucket, key)).arg(value))
    }

    fn delete(&self, bucket: &str, key: &str) -> Result<(), String> {
        self.query::<i64>(redis::cmd("DEL").arg(redis_key(bucket, key)))
            .map(drop)
    }

    fn keys(&self, bucket: &str) -> Result<Vec<String>, String> {
        let prefix = redis_key(bucket, "");
        let keys: Vec<String> = self.query(redis::cmd("KEYS").arg(format!("{prefix}*")))?;
        Ok(keys
            .into_iter()
            .filter_map(|k| k.strip_prefix(&prefix).map(str::to_owned))
            .collect())
    }

    fn increment(&self, bucket: &str, key: &str, delta: i64) -> Result<i64, String> {
        self.query(redis::cmd("INCRBY").arg(redis_key(bucket, key)).arg(delta))
    }

    fn swap(
        &self,
        bucket: &str,
        key: &str,
        seen: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, String> {
        let set: i64 = self.query(
            redis::cmd("EVAL")
                .arg(SWAP)
                .arg(1)
                .arg(redis_key(bucket, key))
                .arg(if seen.is_some() { "1" } else { "0" })
                .arg(seen.unwrap_or_default())
                .arg(value),
        )?;
        Ok(set == 1)
    }
}

/// An open bucket of `0.2.0-draft2`.
pub struct Bucket {
    name: String,
}

/// An open bucket of `0.2.0-draft`.
pub struct DraftBucket {
    name: String,
}

/// A compare-and-swap handle: the value `cas.new` saw.
pub struct Cas {
    bucket: String,
    key: String,
    seen: Option<Vec<u8>>,
}

/// What an instance's wasi:keyvalue and wasi:config see: the shared backend (none: every
/// `open` fails with `no-such-store`) and the config values.
#[derive(Clone, Default)]
pub struct KvCtx {
    pub backend: Option<Arc<dyn KvBackend>>,
    pub config: Vec<(String, String)>,
}

/// The per-instance view the host functions work on.
pub struct KvView<'a> {
    pub ctx: &'a KvCtx,
    pub table: &'a mut ResourceTable,
}

/// Implemented by a store's state to get wasi:keyvalue and wasi:config.
pub trait KvState: Send + 'static {
    fn kv(&mut self) -> KvView<'_>;
}

/// Adds both wasi:keyvalue versions and wasi:config/store to `linker`.
pub fn add_to_linker<T: KvState>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    draft2::Imports::add_to_linker::<T, HasKv>(linker, |state| state.kv())?;
    draft::Imports::add_to_linker::<T, HasKv>(linker, |state| state.kv())?;
    config::Imports::add_to_linker::<T, HasKv>(linker, |state| state.kv())?;
    Ok(())
}

struct HasKv;

impl wasmtime::component::HasData for HasKv {
    type Data<'a> = KvView<'a>;
}

impl KvView<'_> {
    /// Runs `op` on the backend off the instance's thread and awaits it, as a networked
    /// store's call is awaited: other instances run meanwhile, so their store operations
    /// interleave as on a real platform.
    fn run<T: Send + 'static>(
        &self,
        op: impl FnOnce(&dyn KvBackend) -> Result<T, String> + Send + 'static,
    ) -> impl Future<Output = Result<T, String>> + Send + 'static {
        let backend = self.ctx.backend.clone();
        async move {
            let backend = backend.ok_or_else(|| "no key-value store in this host".to_owned())?;
            tokio::task::spawn_blocking(move || op(backend.as_ref()))
                .await
                .map_err(|e| format!("{e}"))?
        }
    }
}

mod v2 {
    use super::draft2::wasi::keyvalue::{atomics, batch, store};
    use super::*;

    type Outcome<T> = wasmtime::Result<Result<T, store::Error>>;

    fn other<T>(result: Result<T, String>) -> Result<T, store::Error> {
        result.map_err(store::Error::Other)
    }

    fn name(table: &ResourceTable, bucket: &Resource<Bucket>) -> wasmtime::Result<String> {
        Ok(table.get(bucket)?.name.clone())
    }

    impl store::Host for KvView<'_> {
        async fn open(&mut self, identifier: String) -> Outcome<Resource<Bucket>> {
            if self.ctx.backend.is_none() {
                return Ok(Err(store::Error::NoSuchStore));
            }
            Ok(Ok(self.table.push(Bucket { name: identifier })?))
        }
    }

    impl store::HostBucket for KvView<'_> {
        async fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<Option<Vec<u8>>> {
            let name = name(self.table, &bucket)?;
            Ok(other(self.run(move |b| b.get(&name, &key)).await))
        }

        async fn set(
            &mut self,
            bucket: Resource<Bucket>,
            key: String,
            value: Vec<u8>,
        ) -> Outcome<()> {
            let name = name(self.table, &bucket)?;
            Ok(other(self.run(move |b| b.set(&name, &key, &value)).await))
        }

        async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<()> {
            let name = name(self.table, &bucket)?;
            Ok(other(self.run(move |b| b.delete(&name, &key)).await))
        }

        async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<bool> {
            let name = name(self.table, &bucket)?;
            let value = self.run(move |b| b.get(&name, &key)).await;
            Ok(other(value.map(|v| v.is_some())))
        }

        async fn list_keys(
            &mut self,
            bucket: Resource<Bucket>,
            _cursor: Option<String>,
        ) -> Outcome<store::KeyResponse> {
            let name = name(self.table, &bucket)?;
            let keys = self.run(move |b| b.keys(&name)).await;
            Ok(other(
                keys.map(|keys| store::KeyResponse { keys, cursor: None }),
            ))
        }

        async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
            self.table.delete(bucket)?;
            Ok(())
        }
    }

    impl atomics::HostCas for KvView<'_> {
        async fn new(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<Resource<Cas>> {
            let bucket = name(self.table, &bucket)?;
            let (b, k) = (bucket.clone(), key.clone());
            let seen = match self.run(move |backend| backend.get(&b, &k)).await {
                Ok(seen) => seen,
                Err(e) => return Ok(Err(store::Error::Other(e))),
            };
            Ok(Ok(self.table.push(Cas { bucket, key, seen })?))
        }

        async fn current(&mut self, cas: Resource<Cas>) -> Outcome<Option<Vec<u8>>> {
            Ok(Ok(self.table.get(&cas)?.seen.clone()))
        }

        async fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
            self.table.delete(cas)?;
            Ok(())
        }
    }

    impl atomics::Host for KvView<'_> {
        async fn increment(
            &mut self,
            bucket: Resource<Bucket>,
            key: String,
            delta: i64,
        ) -> Outcome<i64> {
            let name = name(self.table, &bucket)?;
            Ok(other(
                self.run(move |b| b.increment(&name, &key, delta)).await,
            ))
        }

        async fn swap(
            &mut self,
            cas: Resource<Cas>,
            value: Vec<u8>,
        ) -> wasmtime::Result<Result<(), atomics::CasError>> {
            let handle = self.table.get(&cas)?;
            let (bucket, key, seen) = (
                handle.bucket.clone(),
                handle.key.clone(),
                handle.seen.clone(),
            );
            let swapped = self
                .run(move |b| b.swap(&bucket, &key, seen.as_deref(), &value))
                .await;
            Ok(match swapped {
                Ok(true) => {
                    self.table.delete(cas)?;
                    Ok(())
                }
                // The handle goes back to the caller, as the WIT says.
                Ok(false) => Err(atomics::CasError::CasFailed(cas)),
                Err(e) => {
                    self.table.delete(cas)?;
                    Err(atomics::CasError::StoreError(store::Error::Other(e)))
                }
            })
        }
    }

    impl batch::Host for KvView<'_> {
        async fn get_many(
            &mut self,
            bucket: Resource<Bucket>,
            keys: Vec<String>,
        ) -> Outcome<Vec<(String, Option<Vec<u8>>)>> {
            let name = name(self.table, &bucket)?;
            let values = self.run(move |b| {
                keys.into_iter()
                    .map(|k| b.get(&name, &k).map(|v| (k, v)))
                    .collect()
            });
            Ok(other(values.await))
        }

        async fn set_many(
            &mut self,
            bucket: Resource<Bucket>,
            pairs: Vec<(String, Vec<u8>)>,
        ) -> Outcome<()> {
            let name = name(self.table, &bucket)?;
            let set = self.run(move |b| pairs.iter().try_for_each(|(k, v)| b.set(&name, k, v)));
            Ok(other(set.await))
        }

        async fn delete_many(
            &mut self,
            bucket: Resource<Bucket>,
            keys: Vec<String>,
        ) -> Outcome<()> {
            let name = name(self.table, &bucket)?;
            let deleted = self.run(move |b| keys.iter().try_for_each(|k| b.delete(&name, k)));
            Ok(other(deleted.await))
        }
    }
}

mod v1 {
    use super::draft::wasi::keyvalue::{atomics, batch, store};
    use super::*;

    type Outcome<T> = wasmtime::Result<Result<T, store::Error>>;

    fn other<T>(result: Result<T, String>) -> Result<T, store::Error> {
        result.map_err(store::Error::Other)
    }

    fn name(table: &ResourceTable, bucket: &Resource<DraftBucket>) -> wasmtime::Result<String> {
        Ok(table.get(bucket)?.name.clone())
    }

    impl store::Host for KvView<'_> {
        async fn open(&mut self, identifier: String) -> Outcome<Resource<DraftBucket>> {
            if self.ctx.backend.is_none() {
                return Ok(Err(store::Error::NoSuchStore));
            }
            Ok(Ok(self.table.push(DraftBucket { name: identifier })?))
        }
    }

    impl store::HostBucket for KvView<'_> {
        async fn get(
            &mut self,
            bucket: Resource<DraftBucket>,
            key: String,
        ) -> Outcome<Option<Vec<u8>>> {
            let name = name(self.table, &bucket)?;
            Ok(other(self.run(move |b| b.get(&name, &key)).await))
        }

        async fn set(
            &mut self,
            bucket: Resource<DraftBucket>,
            key: String,
            value: Vec<u8>,
        ) -> Outcome<()> {
            let name = name(self.table, &bucket)?;
            Ok(other(self.run(move |b| b.set(&name, &key, &value)).await))
        }

        async fn delete(&mut self, bucket: Resource<DraftBucket>, key: String) -> Outcome<()> {
            let name = name(self.table, &bucket)?;
            Ok(other(self.run(move |b| b.delete(&name, &key)).await))
        }

        async fn exists(&mut self, bucket: Resource<DraftBucket>, key: String) -> Outcome<bool> {
            let name = name(self.table, &bucket)?;
            let value = self.run(move |b| b.get(&name, &key)).await;
            Ok(other(value.map(|v| v.is_some())))
        }

        async fn list_keys(
            &mut self,
            bucket: Resource<DraftBucket>,
            _cursor: Option<u64>,
        ) -> Outcome<store::KeyResponse> {
            let name = name(self.table, &bucket)?;
            let keys = self.run(move |b| b.keys(&name)).await;
            Ok(other(
                keys.map(|keys| store::KeyResponse { keys, cursor: None }),
            ))
        }

        async fn drop(&mut self, bucket: Resource<DraftBucket>) -> wasmtime::Result<()> {
            self.table.delete(bucket)?;
            Ok(())
        }
    }

    impl atomics::Host for KvView<'_> {
        async fn increment(
            &mut self,
            bucket: Resource<DraftBucket>,
            key: String,
            delta: u64,
        ) -> Outcome<u64> {
            let name = name(self.table, &bucket)?;
            let next = self.run(move |b| {
                let delta = i64::try_from(delta).map_err(|e| e.to_string())?;
                b.increment(&name, &key, delta)
                    .and_then(|n| u64::try_from(n).map_err(|e| e.to_string()))
            });
            Ok(other(next.await))
        }
    }

    impl batch::Host for KvView<'_> {
        async fn get_many(
            &mut self,
            bucket: Resource<DraftBucket>,
            keys: Vec<String>,
        ) -> Outcome<Vec<Option<(String, Vec<u8>)>>> {
            let name = name(self.table, &bucket)?;
            let values = self.run(move |b| {
                keys.into_iter()
                    .map(|k| b.get(&name, &k).map(|v| v.map(|v| (k, v))))
                    .collect()
            });
            Ok(other(values.await))
        }

        async fn set_many(
            &mut self,
            bucket: Resource<DraftBucket>,
            pairs: Vec<(String, Vec<u8>)>,
        ) -> Outcome<()> {
            let name = name(self.table, &bucket)?;
            let set = self.run(move |b| pairs.iter().try_for_each(|(k, v)| b.set(&name, k, v)));
            Ok(other(set.await))
        }

        async fn delete_many(
            &mut self,
            bucket: Resource<DraftBucket>,
            keys: Vec<String>,
        ) -> Outcome<()> {
            let name = name(self.table, &bucket)?;
            let deleted = self.run(move |b| keys.iter().try_for_each(|k| b.delete(&name, k)));
            Ok(other(deleted.await))
        }
    }
}

mod cfg {
    use super::config::wasi::config::store;
    use super::*;

    impl store::Host for KvView<'_> {
        async fn get(
            &mut self,
            key: String,
        ) -> wasmtime::Result<Result<Option<String>, store::Error>> {
            let value = self.ctx.config.iter().find(|(k, _)| *k == key);
            Ok(Ok(value.map(|(_, v)| v.clone())))
        }

        async fn get_all(
            &mut self,
        ) -> wasmtime::Result<Result<Vec<(String, String)>, store::Error>> {
            Ok(Ok(self.ctx.config.clone()))
        }
    }
}
