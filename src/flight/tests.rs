use super::*;
use crate::client::Client;
use crate::fakes::*;
use crate::lifecycle::{Action, Ready};
use crate::ports::{Clock, Transport};
use crate::retry::Deadline;
use crate::shared::Acquired;

fn tokens(transport: &FakeTransport, clock: &FakeClock) -> Client<FakeTransport, FakeClock> {
    client(transport, clock)
}

/// Drives `renewal` as the async driver does, but with the fake transport and no store: one
/// step at a time.
fn drive(
    client: &Client<FakeTransport, FakeClock>,
    mut renewal: Box<Renewal>,
) -> Result<Ready, Error> {
    let tokens = &client.tokens;
    let deadline = Deadline::start(client.clock.monotonic(), tokens.settings.retry.budget);
    loop {
        match tokens.next(&mut renewal, client.clock.now(), &deadline) {
            Action::Sleep(pause) => deadline.sleep(&client.clock, pause),
            Action::Look { .. } => tokens.looked(&mut renewal, Acquired::Unshared),
            Action::Send(request) => {
                let response = client.transport.post_token(&request);
                tokens.answered(&mut renewal, response);
            }
            Action::Publish(..) => panic!("no store to publish to"),
            Action::Done(result) => return result,
        }
    }
}

#[test]
fn concurrent_callers_without_a_token_wait_for_one_renewal() {
    let (transport, clock) = (FakeTransport::default(), FakeClock::default());
    transport.answer(200, &token_body("t1", 1200));
    let tokens = tokens(&transport, &clock);
    let mut flight = Flight::default();
    let Step::Renew(number, renewal) = flight.begin(&tokens.tokens, clock.monotonic()) else {
        panic!("the first caller renews");
    };
    // 99 more callers arrive before the token request is answered.
    for _ in 0..99 {
        assert!(
            matches!(flight.begin(&tokens.tokens, clock.monotonic()), Step::Wait(n) if n == number)
        );
    }
    assert_eq!(flight.ended(number, clock.monotonic()), Waited::Running);
    let result = drive(&tokens, renewal);
    flight.end(number, &result);
    assert_eq!(flight.ended(number, clock.monotonic()), Waited::Again);
    let bearer = tokens.tokens.usable(clock.monotonic()).expect("a token");
    assert_eq!(bearer.expose(), "Bearer t1");
    assert_eq!(transport.sent(), 1);
}

#[test]
fn past_the_refresh_point_callers_send_the_live_token_while_one_renews() {
    let (transport, clock) = (FakeTransport::default(), FakeClock::default());
    transport.script(vec![
        answer(200, &token_body("t1", 1200)),
        answer(200, &token_body("t2", 1200)),
    ]);
    let tokens = tokens(&transport, &clock);
    let mut flight = Flight::default();
    let Step::Renew(n, renewal) = flight.begin(&tokens.tokens, clock.monotonic()) else {
        panic!("renews");
    };
    let result = drive(&tokens, renewal);
    flight.end(n, &result);
    // Past the refresh point (the default margin is 60 s), 10 s before expiry: it lives.
    clock.advance(secs(1190));
    assert!(tokens.tokens.usable(clock.monotonic()).is_none());
    let Step::Renew(n, renewal) = flight.begin(&tokens.tokens, clock.monotonic()) else {
        panic!("one caller renews");
    };
    for _ in 0..10 {
        let Step::Ready(bearer) = flight.begin(&tokens.tokens, clock.monotonic()) else {
            panic!("the live token is sent");
        };
        assert_eq!(bearer.expose(), "Bearer t1");
        let bearer = tokens
            .tokens
            .sendable(clock.monotonic())
            .expect("the live token");
        assert_eq!(bearer.expose(), "Bearer t1");
    }
    let result = drive(&tokens, renewal);
    flight.end(n, &result);
    let bearer = tokens
        .tokens
        .usable(clock.monotonic())
        .expect("the new token");
    assert_eq!(bearer.expose(), "Bearer t2");
    assert_eq!(transport.sent(), 2);
}

#[test]
fn a_failed_renewal_answers_every_waiting_caller_with_its_error() {
    let (transport, clock) = (FakeTransport::default(), FakeClock::default());
    // Not a credential failure, so no cool-down: without the shared ending, each waiting
    // caller would start a token request of its own.
    transport.answer(
        400,
        r#"{"Message":"bad","Type":"param_error","Id":"x","Date":1.0}"#,
    );
    let tokens = tokens(&transport, &clock);
    let mut flight = Flight::default();
    let Step::Renew(n, renewal) = flight.begin(&tokens.tokens, clock.monotonic()) else {
        panic!("renews");
    };
    let waiting: Vec<Step> = (0..5)
        .map(|_| flight.begin(&tokens.tokens, clock.monotonic()))
        .collect();
    let result = drive(&tokens, renewal);
    let Err(error) = &result else {
        panic!("fails");
    };
    let error = error.clone();
    flight.end(n, &result);
    for step in waiting {
        let Step::Wait(number) = step else {
            panic!("waits");
        };
        assert_eq!(
            flight.ended(number, clock.monotonic()),
            Waited::Failed(error.clone())
        );
    }
    assert_eq!(transport.sent(), 1);
}

/// A renewal whose store call the host held for the whole budget is not taken for one
/// dropped once its deadline restarted: the callers without a token wait on, and begin no
/// second renewal (a second token request).
#[test]
fn a_renewal_whose_deadline_restarted_holds_its_callers_as_long() {
    let (transport, clock) = (FakeTransport::default(), FakeClock::default());
    let tokens = tokens(&transport, &clock);
    let budget = tokens.tokens.settings.retry.budget;
    let mut flight = Flight::default();
    let Step::Renew(n, _renewal) = flight.begin(&tokens.tokens, clock.monotonic()) else {
        panic!("renews");
    };
    // The store call took the whole budget and failed: the deadline starts again.
    clock.advance(budget);
    let deadline = Deadline::start(clock.monotonic(), budget);
    flight.lasts_until(n, deadline.end());
    assert_eq!(flight.ended(n, clock.monotonic()), Waited::Running);
    assert!(matches!(
        flight.begin(&tokens.tokens, clock.monotonic()),
        Step::Wait(number) if number == n
    ));
    // Another renewal's number changes nothing.
    flight.lasts_until(n + 1, clock.monotonic() + budget * 10);
    clock.advance(budget);
    assert_eq!(flight.ended(n, clock.monotonic()), Waited::Again);
    assert_eq!(transport.sent(), 0);
}

#[test]
fn a_renewal_dropped_unfinished_stops_holding_callers_at_its_deadline() {
    let (transport, clock) = (FakeTransport::default(), FakeClock::default());
    transport.answer(200, &token_body("t1", 1200));
    let tokens = tokens(&transport, &clock);
    let mut flight = Flight::default();
    let Step::Renew(n, renewal) = flight.begin(&tokens.tokens, clock.monotonic()) else {
        panic!("renews");
    };
    drop(renewal);
    assert!(matches!(
        flight.begin(&tokens.tokens, clock.monotonic()),
        Step::Wait(_)
    ));
    clock.advance(tokens.tokens.settings.retry.budget);
    assert_eq!(flight.ended(n, clock.monotonic()), Waited::Again);
    assert!(matches!(
        flight.begin(&tokens.tokens, clock.monotonic()),
        Step::Renew(2, _)
    ));
}

#[test]
fn a_cool_down_fails_callers_without_a_token_request() {
    let (transport, clock) = (FakeTransport::default(), FakeClock::default());
    transport.answer(401, INVALID);
    let tokens = tokens(&transport, &clock);
    let mut flight = Flight::default();
    let Step::Renew(n, renewal) = flight.begin(&tokens.tokens, clock.monotonic()) else {
        panic!("renews");
    };
    let result = drive(&tokens, renewal);
    flight.end(n, &result);
    for _ in 0..50 {
        let Step::Failed(error) = flight.begin(&tokens.tokens, clock.monotonic()) else {
            panic!("cooling down");
        };
        assert_eq!(error.case_name(), "invalid-credentials");
    }
    assert_eq!(transport.sent(), 1);
}
