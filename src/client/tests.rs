use crate::fakes::*;
use crate::token::{Source, StoreHealth};

#[test]
fn token_reports_time_left_and_wall_expiry() {
    let (transport, clock) = (FakeTransport::default(), FakeClock::default());
    let client = client(&transport, &clock);
    transport.answer(200, &token_body("t", 7200));
    clock.advance(secs(10));
    client.get_token().expect("token");
    clock.advance(secs(100));
    let token = client.get_token().expect("token");
    assert_eq!(token.expires_in_seconds, 7100);
    assert_eq!(token.expires_at_unix_seconds, 1_800_000_000 + 10 + 7200);
}

#[test]
fn status_reports_without_secrets() {
    let (transport, clock) = (FakeTransport::default(), FakeClock::default());
    let client = client(&transport, &clock);
    let empty = client.status();
    assert!(!empty.held && empty.source.is_none() && empty.token_requests == 0);
    assert_eq!(empty.store, StoreHealth::NotConfigured);
    transport.answer(401, INVALID);
    let _ = client.get_token();
    assert_eq!(client.status().cool_down, Some(secs(60)));
    clock.advance(secs(60));
    transport.answer(200, &token_body("tok-secret", 1200));
    client.get_token().expect("token");
    client.get_token().expect("token");
    let status = client.status();
    assert!(status.held);
    assert_eq!(status.source, Some(Source::InstanceCache));
    assert_eq!(status.expires_in_seconds, Some(1200));
    assert_eq!(status.token_requests, 2);
    assert_eq!(status.cool_down, None);
    assert!(!format!("{status:?}").contains("tok-secret"));
}
