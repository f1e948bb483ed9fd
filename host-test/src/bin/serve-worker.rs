//! One host process of a replicated per-request platform, for the two-process test: it serves
//! a composed proxy component (a fresh instance per HTTP request) with wasi:keyvalue over
//! Redis, sends it `requests` requests one after another, and prints one line:
//! `fresh-fetch=<n> shared-store=<n> instance-cache=<n> other=<n>`, from the answers'
//! `x-mangopay-token-source` headers.
//!
//! Usage: serve-worker <composed.wasm> <redis-url> <mangopay-base-url> <client-id> <api-key> <requests> <at-seconds>

use host_test::clock::VirtualClock;
use host_test::keyvalue::RedisKv;
use host_test::sim::serve::{ServeOptions, Server, Service};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [wasm, redis, base, client_id, api_key, requests, at] = args.as_slice() else {
        eprintln!(
            "usage: serve-worker <composed.wasm> <redis-url> <base-url> <client-id> <api-key> <requests> <at-seconds>"
        );
        std::process::exit(2);
    };
    let requests: u32 = requests.parse().expect("a number of requests");
    let clock = VirtualClock::new();
    clock.advance(Duration::from_secs(at.parse().expect("seconds")));
    let options = ServeOptions {
        env: vec![
            ("MANGOPAY_CLIENT_ID".to_owned(), client_id.clone()),
            ("MANGOPAY_API_KEY".to_owned(), api_key.clone()),
            ("MANGOPAY_BASE_URL".to_owned(), base.clone()),
        ],
        clock: Some(clock),
        keyvalue: Some(Arc::new(RedisKv::new(redis))),
        ..ServeOptions::default()
    };
    let service = Arc::new(Service::load(Path::new(wasm)).expect("the component loads"));
    let server = Server::start(service, options);
    let mut sources: BTreeMap<String, u32> = ["fresh-fetch", "shared-store", "instance-cache"]
        .into_iter()
        .map(|s| (s.to_owned(), 0))
        .collect();
    let mut other = 0;
    for _ in 0..requests {
        let reply = server.get("/users").expect("an answer");
        assert_eq!(reply.status, 200, "{}", reply.body);
        match reply
            .header("x-mangopay-token-source")
            .and_then(|s| sources.get_mut(s))
        {
            Some(count) => *count += 1,
            None => other += 1,
        }
    }
    let counts: Vec<String> = sources.iter().map(|(s, n)| format!("{s}={n}")).collect();
    println!("{} other={other}", counts.join(" "));
}
