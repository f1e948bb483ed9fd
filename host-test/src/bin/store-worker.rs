//! One host process of a replicated platform, for the shared-store tests: it makes fresh
//! instances of the `component-with-store` world, one after another, each authorizing one
//! request with the default client, all sharing tokens through Redis. It prints one line:
//! `token-requests=<n> shared=<n> fetched=<n>`.
//!
//! Usage: store-worker <redis-url> <mangopay-base-url> <client-id> <api-key> <instances> <at-seconds>

use host_test::clock::VirtualClock;
use host_test::host::{Host, HttpRequest, InstanceOptions, TokenSource};
use host_test::store::RedisStore;
use std::sync::Arc;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [redis, base, client_id, api_key, instances, at] = args.as_slice() else {
        eprintln!(
            "usage: store-worker <redis-url> <base-url> <client-id> <api-key> <instances> <at-seconds>"
        );
        std::process::exit(2);
    };
    let instances: u32 = instances.parse().expect("a number of instances");
    let clock = VirtualClock::new();
    clock.advance(Duration::from_secs(at.parse().expect("seconds")));
    let store = Arc::new(RedisStore::new(redis));
    let env = vec![
        ("MANGOPAY_CLIENT_ID".to_owned(), client_id.clone()),
        ("MANGOPAY_API_KEY".to_owned(), api_key.clone()),
        ("MANGOPAY_BASE_URL".to_owned(), base.clone()),
    ];
    let request = HttpRequest {
        method: "GET".into(),
        url: format!("{base}/v2.01/{client_id}/users"),
        headers: Vec::new(),
    };
    let (mut requests, mut shared, mut fetched) = (0, 0, 0);
    for _ in 0..instances {
        let options = InstanceOptions {
            env: env.clone(),
            clock: Some(clock.clone()),
            store: Some(store.clone()),
            ..InstanceOptions::default()
        };
        let mut instance = Host::with_store()
            .instantiate(options)
            .expect("instantiates");
        instance
            .default_authorize_request(&request)
            .expect("no trap")
            .expect("authorized");
        let status = instance
            .default_token_status()
            .expect("no trap")
            .expect("status");
        requests += status.token_requests;
        match status.source {
            Some(TokenSource::SharedStore) => shared += 1,
            Some(TokenSource::FreshFetch) => fetched += 1,
            _ => {}
        }
    }
    println!("token-requests={requests} shared={shared} fetched={fetched}");
}
