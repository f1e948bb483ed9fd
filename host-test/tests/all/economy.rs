//! Token economy: the token requests the mock Mangopay counts for the
//! workloads the benchmark reports. Counts only; timings belong to the benchmark
//! (`cargo run -p bench --profile bench`), never to the test suite.

use host_test::fixture::{CLIENT_ID, World};
use host_test::host::{Host, InstanceOptions};
use std::time::Duration;

/// The refresh point of a 1200 s token with the default 60 s margin.
const REFRESH_AT: Duration = Duration::from_secs(1140);

#[test]
fn ten_thousand_authorizations_in_one_lifetime_cost_one_token_request() {
    let mut world = World::new();
    let client = world.client();
    let request = world.users(CLIENT_ID);
    const CALLS: u32 = 10_000;
    // Spread over the token's whole usable life, to just before its refresh point.
    let step = (REFRESH_AT - Duration::from_millis(1)) / CALLS;
    for _ in 0..CALLS {
        world.authorize(client, &request).expect("authorized");
        world.clock.advance(step);
    }
    assert_eq!(world.mock.token_requests(), 1);

    // The next lifetime starts at the refresh point: one more request, and no more.
    world.clock.advance(REFRESH_AT.saturating_sub(step * CALLS));
    for _ in 0..100 {
        world.authorize(client, &request).expect("authorized");
    }
    assert_eq!(world.mock.token_requests(), 2);
}

#[test]
fn fresh_instances_without_a_store_fetch_one_token_each() {
    // Without a token store, an instance's cache dies with it: one request per instance.
    const INSTANCES: usize = 1_000;
    let world = World::new();
    let config = world.config();
    let request = world.users(CLIENT_ID);
    for _ in 0..INSTANCES {
        let mut instance = Host::shared()
            .instantiate(InstanceOptions {
                clock: Some(world.clock.clone()),
                ..InstanceOptions::default()
            })
            .expect("instantiates");
        let client = instance
            .create_client(&config)
            .expect("no trap")
            .expect("valid config");
        for _ in 0..3 {
            instance
                .authorize_request(client, &request)
                .expect("no trap")
                .expect("authorized");
        }
    }
    assert_eq!(world.mock.token_requests(), INSTANCES);
}
