use super::*;
use crate::error::UnexpectedResponse;
use crate::ports::TransportError;

#[test]
fn backoff_doubles_under_full_jitter() {
    let ms = Duration::from_millis;
    assert_eq!(
        backoff(ms(200), 1, 0.999_999),
        ms(199) + Duration::from_micros(999) + Duration::from_nanos(800)
    );
    assert_eq!(backoff(ms(200), 3, 1.0), ms(800));
    assert_eq!(backoff(ms(200), 3, 0.5), ms(400));
    assert_eq!(backoff(ms(200), 1, 0.0), ms(0));
    assert_eq!(backoff(ms(200), 40, 1.0), ms(200 * 65536));
}

#[test]
fn cool_down_doubles_to_the_cap() {
    let s = Duration::from_secs;
    let steps: Vec<u64> = (1..=6)
        .map(|n| cool_down(s(60), s(900), n).as_secs())
        .collect();
    assert_eq!(steps, vec![60, 120, 240, 480, 900, 900]);
}

#[test]
fn retry_after_in_both_forms() {
    let now = Duration::from_secs(1_795_824_000); // 2026-11-28T00:00:00Z
    assert_eq!(
        parse_retry_after(" 120 ", now),
        Some(Duration::from_secs(120))
    );
    assert_eq!(
        parse_retry_after("Sat, 28 Nov 2026 00:01:30 GMT", now),
        Some(Duration::from_secs(90))
    );
    assert_eq!(
        parse_retry_after("Fri, 27 Nov 2026 00:00:00 GMT", now),
        Some(Duration::ZERO)
    );
    assert_eq!(parse_retry_after("soon", now), None);
    assert_eq!(parse_retry_after("-5", now), None);
}

#[test]
fn only_transient_faults_are_retried() {
    let transport = |kind| {
        Error::Transport(TransportError {
            kind,
            detail: String::new(),
        })
    };
    let status = |status| {
        Error::UnexpectedResponse(UnexpectedResponse {
            status,
            excerpt: String::new(),
            retry_in: None,
        })
    };
    assert!(is_transient(&transport(TransportKind::Timeout)));
    assert!(is_transient(&transport(TransportKind::ConnectionRefused)));
    assert!(is_transient(&transport(TransportKind::ConnectionLost)));
    assert!(!is_transient(&transport(TransportKind::Dns)));
    assert!(!is_transient(&transport(TransportKind::Tls)));
    for s in [429, 500, 502, 503, 504] {
        assert!(is_transient(&status(s)), "{s}");
    }
    for s in [301, 400, 403, 404, 501] {
        assert!(!is_transient(&status(s)), "{s}");
    }
    assert!(!is_transient(&Error::InvalidConfig(String::new())));
}

#[test]
fn jitter_is_in_range_and_varies() {
    let samples: Vec<f64> = (0..100).map(|_| jitter()).collect();
    assert!(samples.iter().all(|j| (0.0..1.0).contains(j)));
    assert!(samples.iter().any(|j| *j != samples[0]));
}

#[test]
fn http_dates_in_the_three_forms() {
    // RFC 9110 §5.6.7's example: 1994-11-06T08:49:37Z.
    let at = Some(Duration::from_secs(784_111_777));
    assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), at);
    assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), at);
    assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), at);
    assert_eq!(parse_http_date("Sun Nov 06 08:49:37 1994"), at);
    assert_eq!(
        parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"),
        Some(Duration::ZERO)
    );
    // Two-digit years: 00–69 are 20xx.
    assert_eq!(
        parse_http_date("Saturday, 28-Nov-26 00:00:00 GMT"),
        Some(Duration::from_secs(1_795_824_000))
    );
    assert_eq!(
        parse_http_date("Tue, 29 Feb 2000 23:59:59 GMT"),
        Some(Duration::from_secs(951_868_799))
    );
    assert_eq!(
        parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT"),
        Some(Duration::from_secs(253_402_300_799))
    );
}

#[test]
fn http_dates_that_do_not_exist_or_are_malformed_are_refused() {
    for bad in [
        "",
        "Sun, 06 Nov 1994 08:49:37",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 nov 1994 08:49:37 GMT",
        "sun, 06 Nov 1994 08:49:37 GMT",
        "Sun,  06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "Sun, 06 Nov 1994 08:49 GMT",
        "Sunday, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06-Nov-94 08:49:37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sunday, 06-Nov-94T08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994 GMT",
        "Sun Nov 6 08:49:37 1994",
        "Sun Nov   6 08:49:37 1994",
        // Wrong weekday, impossible dates and times, out of range years.
        "Mon, 06 Nov 1994 08:49:37 GMT",
        "Monday, 06-Nov-94 08:49:37 GMT",
        "Mon Nov  6 08:49:37 1994",
        "Sun, 29 Feb 2026 00:00:00 GMT",
        "Mon, 29 Feb 2100 00:00:00 GMT",
        "Tue, 31 Apr 2026 00:00:00 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49:60 GMT",
        "Wed, 31 Dec 1969 23:59:59 GMT",
        "Sat, 01 Jan 10000 00:00:00 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT\u{0}",
        "Sun, 06 Nov 1994 08:49:3é GMT",
    ] {
        assert_eq!(parse_http_date(bad), None, "{bad:?}");
    }
}

/// A host whose monotonic clock does not move while the component sleeps (a frozen or
/// virtual clock): the pauses still count against the budget.
struct Frozen;

impl Clock for Frozen {
    fn monotonic(&self) -> Duration {
        Duration::ZERO
    }
    fn wall(&self) -> Duration {
        Duration::from_secs(1_800_000_000)
    }
    fn sleep(&self, _: Duration) {}
}

#[test]
fn a_deadline_holds_on_a_clock_that_does_not_move() {
    let deadline = Deadline::start(Frozen.monotonic(), Duration::from_secs(1));
    let mut pauses = 0;
    while deadline.allows(Frozen.monotonic(), Duration::from_millis(250)) {
        deadline.sleep(&Frozen, Duration::from_millis(250));
        pauses += 1;
    }
    // 250 ms pauses, each leaving at least MIN_ATTEMPT (100 ms): three fit in a second.
    assert_eq!(pauses, 3);
    assert_eq!(
        deadline.remaining(Frozen.monotonic()),
        Duration::from_millis(250)
    );
    let (timeouts, within) = deadline.clip(
        Frozen.monotonic(),
        Timeouts {
            connect: Duration::from_secs(5),
            first_byte: Duration::from_secs(10),
            between_bytes: Duration::from_millis(100),
        },
    );
    assert_eq!(within, Duration::from_millis(250));
    assert_eq!(timeouts.connect, within);
    assert_eq!(timeouts.between_bytes, Duration::from_millis(100));
}

/// A TLS fault is the host's configuration: never retried in the call, paused for the
/// cool-down's base whatever the strikes (it is none), shared with the fleet.
#[test]
fn a_tls_fault_pauses_the_base_cool_down_undoubled_and_shared() {
    let s = Duration::from_secs;
    let limits = CoolDown {
        initial: s(60),
        max: s(900),
    };
    let tls = Failure {
        error: Error::Transport(TransportError {
            kind: TransportKind::Tls,
            detail: String::new(),
        }),
        retry_after: None,
    };
    assert!(is_tls_fault(&tls.error));
    assert!(!is_transient(&tls.error));
    assert!(!is_credential_failure(&tls.error));
    assert!(is_shared_pause(&tls));
    for strikes in [0, 1, 4] {
        assert_eq!(pause_after(&tls, strikes, false, &limits), Some(s(60)));
    }
    // While a held token lives, the renewal is tried again soon, as for any failure.
    assert_eq!(pause_after(&tls, 0, true, &limits), Some(RENEWAL_RETRY));
    let lost = Failure {
        error: Error::Transport(TransportError {
            kind: TransportKind::ConnectionLost,
            detail: String::new(),
        }),
        retry_after: None,
    };
    assert!(!is_tls_fault(&lost.error) && !is_shared_pause(&lost));
    assert_eq!(pause_after(&lost, 0, false, &limits), None);
}
