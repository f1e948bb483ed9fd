//! Property tests of the component's pure logic: the token endpoint's wire format, the quoting
//! of texts from the wire, the Basic credential, URL origins and the same-origin shortcut.
//!
//! Each property states what the code must do for every generated input, so a wrong
//! implementation (a panic, a lost field, a secret let through, an origin confused) fails it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mangopay_auth::origin::{Origin, UrlError};
use mangopay_auth::redact::{SECRET_PIECE, WITHHELD, quote};
use mangopay_auth::wire::{
    ErrorBody, MAX_EXPIRES_IN, TokenProblem, basic_authorization, parse_error_body,
    parse_token_response,
};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const EXCERPT_CHARS: usize = 200;

// ---------------------------------------------------------------------------------------------
// Generators

/// Any JSON value, a few levels deep, with every scalar type.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        (0u64..200_000).prop_map(|n| Value::from(n as f64)),
        any::<String>().prop_map(Value::from),
        "[ -~]{0,20}".prop_map(Value::from),
        Just(Value::from("bearer")),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Field names that none of the parsers reads.
fn unknown_field() -> impl Strategy<Value = String> {
    "x_[A-Za-z_]{0,10}"
}

/// A JSON object written out with its members in the given order.
fn object(members: &[(String, Value)]) -> String {
    let members: Vec<String> = members
        .iter()
        .map(|(name, value)| format!("{}:{value}", Value::from(name.as_str())))
        .collect();
    format!("{{{}}}", members.join(","))
}

/// Members in a random order, with unknown fields mixed in.
fn shuffled_members(known: Vec<(String, Value)>) -> impl Strategy<Value = Vec<(String, Value)>> {
    btree_map(unknown_field(), json_value(), 0..4).prop_flat_map(move |extra| {
        let mut members = known.clone();
        members.extend(extra);
        Just(members).prop_shuffle()
    })
}

/// "bearer" in a random ASCII case.
fn bearer_any_case() -> impl Strategy<Value = String> {
    vec(any::<bool>(), 6).prop_map(|upper| {
        "bearer"
            .chars()
            .zip(upper)
            .map(|(c, up)| if up { c.to_ascii_uppercase() } else { c })
            .collect()
    })
}

/// 8+ alphanumeric characters that are not part of the component's fixed withheld text.
fn secret() -> impl Strategy<Value = String> {
    "[A-Za-z0-9]{8,32}".prop_filter("part of the fixed text", |s| !WITHHELD.contains(s.as_str()))
}

/// Texts from the wire: any characters, control characters, long runs.
fn wire_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\x00-\\x1f\\x7f\\u{80}-\\u{9f} a-zA-Z0-9]{0,300}",
        "[a-z]{150,400}",
    ]
}

/// A DNS name that is not loopback: lower-case labels ending in an alphabetic TLD (so it is
/// never an IPv4 address) and never `localhost`.
fn hostname() -> impl Strategy<Value = String> {
    (
        vec("[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", 0..4),
        "[a-z]{2,10}",
    )
        .prop_map(|(mut labels, tld)| {
            labels.push(tld);
            labels.join(".")
        })
        .prop_filter("loopback", |h| h != "localhost")
}

/// A port a URL may name: 0 is refused as invalid, whatever else the URL says.
fn valid_port() -> impl Strategy<Value = u16> {
    1u16..=u16::MAX
}

// ---------------------------------------------------------------------------------------------
// What parse_token_response must decide, written independently of it.

fn expected_token(
    access_token: Option<&Value>,
    token_type: Option<&Value>,
    expires_in: Option<&Value>,
) -> Result<(String, String, u64), TokenProblem> {
    let Some(Value::String(token)) = access_token else {
        return Err(TokenProblem::MissingAccessToken);
    };
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TokenProblem::InvalidAccessToken);
    }
    let kind = match token_type {
        Some(Value::String(kind)) if kind.eq_ignore_ascii_case("bearer") => kind,
        _ => return Err(TokenProblem::UnsupportedTokenType),
    };
    let in_range = |n: u64| (1..=MAX_EXPIRES_IN).contains(&n);
    let seconds = match expires_in {
        Some(Value::Number(n)) => n.as_u64().filter(|&n| in_range(n)).or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 1.0 && *f <= MAX_EXPIRES_IN as f64)
                .map(|f| f as u64)
        }),
        _ => None,
    };
    let seconds = seconds.ok_or(TokenProblem::InvalidExpiresIn)?;
    Ok((token.clone(), kind.clone(), seconds))
}

fn parsed_token(body: &[u8]) -> Result<(String, String, u64), TokenProblem> {
    parse_token_response(body).map(|t| {
        (
            t.access_token.expose().to_owned(),
            t.token_type,
            t.expires_in,
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Token answers

proptest! {
    /// Arbitrary bytes never panic, and whatever is accepted is a usable bearer token.
    #[test]
    fn token_response_never_panics_on_bytes(body in vec(any::<u8>(), 0..512)) {
        if let Ok((token, kind, expires_in)) = parsed_token(&body) {
            prop_assert!(!token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()));
            prop_assert!(kind.eq_ignore_ascii_case("bearer"));
            prop_assert!((1..=MAX_EXPIRES_IN).contains(&expires_in));
        }
    }

    /// JSON objects whose three fields are each absent or of any type: no panic, and exactly
    /// the decision (token or problem) the documented rules give.
    #[test]
    fn token_response_follows_the_rules_on_any_object(
        // Mostly plausible values, so that accepted answers are common too.
        access_token in proptest::option::weighted(0.9, prop_oneof![
            1 => json_value(),
            3 => "[!-~]{1,40}".prop_map(Value::from),
        ]),
        token_type in proptest::option::weighted(0.9, prop_oneof![
            1 => json_value(),
            3 => bearer_any_case().prop_map(Value::from),
        ]),
        expires_in in proptest::option::weighted(0.9, prop_oneof![
            json_value(),
            (0u64..=MAX_EXPIRES_IN + 2).prop_map(Value::from),
            (0u64..=MAX_EXPIRES_IN + 2).prop_map(|n| Value::from(n as f64)),
            (-10.0f64..100_000.0).prop_map(Value::from),
        ]),
        extra in btree_map(unknown_field(), json_value(), 0..4),
    ) {
        let mut members: Vec<(String, Value)> = extra.into_iter().collect();
        for (name, value) in [
            ("access_token", &access_token),
            ("token_type", &token_type),
            ("expires_in", &expires_in),
        ] {
            if let Some(value) = value {
                members.push((name.to_owned(), value.clone()));
            }
        }
        let body = object(&members);
        // The rules apply to the values as serde_json reads them back (a float may come back
        // one unit in the last place off).
        let read: Value =
            serde_json::from_str(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let expected = expected_token(
            read.get("access_token"),
            read.get("token_type"),
            read.get("expires_in"),
        );
        prop_assert_eq!(parsed_token(body.as_bytes()), expected, "{}", body);
    }

    /// A valid answer, fields in any order among unknown ones, gives back exactly its values.
    #[test]
    fn valid_token_answers_parse_to_their_values(
        (token, kind, expires_in, members) in (
            "[A-Za-z0-9._~+/-]{1,64}",
            bearer_any_case(),
            1u64..=86_400,
            any::<bool>(),
        ).prop_flat_map(|(token, kind, expires_in, as_float)| {
            let seconds = if as_float {
                Value::from(expires_in as f64)
            } else {
                Value::from(expires_in)
            };
            let known = vec![
                ("access_token".to_owned(), Value::from(token.clone())),
                ("token_type".to_owned(), Value::from(kind.clone())),
                ("expires_in".to_owned(), seconds),
            ];
            (Just(token), Just(kind), Just(expires_in), shuffled_members(known))
        })
    ) {
        let body = object(&members);
        prop_assert_eq!(parsed_token(body.as_bytes()), Ok((token, kind, expires_in)), "{}", body);
    }
}

// ---------------------------------------------------------------------------------------------
// Error answers

proptest! {
    /// Mangopay's API error shape gives back exactly its fields.
    #[test]
    fn api_errors_parse_to_their_fields(
        (message, error_type, id, date, members) in (
            proptest::option::of(any::<String>()),
            any::<String>(),
            proptest::option::of(any::<String>()),
            proptest::option::of(prop_oneof![
                (0u64..4_000_000_000).prop_map(|n| n as f64),
                (0u64..4_000_000_000).prop_map(|n| n as f64 + 0.5),
            ]),
            prop_oneof![Just(Value::Null), json_value()],
        ).prop_flat_map(|(message, error_type, id, date, errors)| {
            let mut known = vec![
                ("Type".to_owned(), Value::from(error_type.clone())),
                ("errors".to_owned(), errors),
            ];
            if let Some(message) = &message {
                known.push(("Message".to_owned(), Value::from(message.clone())));
            }
            if let Some(id) = &id {
                known.push(("Id".to_owned(), Value::from(id.clone())));
            }
            if let Some(date) = date {
                known.push(("Date".to_owned(), Value::from(date)));
            }
            (Just(message), Just(error_type), Just(id), Just(date), shuffled_members(known))
        })
    ) {
        let body = object(&members);
        prop_assert_eq!(
            parse_error_body(body.as_bytes()),
            Some(ErrorBody::Api {
                message: message.unwrap_or_default(),
                error_type,
                id,
                date,
            }),
            "{}", body
        );
    }

    /// The OAuth 2.0 error shape (RFC 6749 §5.2) gives back exactly its fields.
    #[test]
    fn oauth_errors_parse_to_their_fields(
        (error, description, members) in (
            any::<String>(),
            proptest::option::of(any::<String>()),
        ).prop_flat_map(|(error, description)| {
            let mut known = vec![("error".to_owned(), Value::from(error.clone()))];
            if let Some(description) = &description {
                known.push(("error_description".to_owned(), Value::from(description.clone())));
            }
            (Just(error), Just(description), shuffled_members(known))
        })
    ) {
        let body = object(&members);
        prop_assert_eq!(
            parse_error_body(body.as_bytes()),
            Some(ErrorBody::OAuth { error, description }),
            "{}", body
        );
    }

    /// Objects with neither an `error` nor a `Type` string are not error bodies.
    #[test]
    fn other_objects_are_not_error_bodies(
        members in btree_map(unknown_field(), json_value(), 0..6),
        message in proptest::option::of(any::<String>()),
    ) {
        let mut members: Vec<(String, Value)> = members.into_iter().collect();
        if let Some(message) = message {
            members.push(("Message".to_owned(), Value::from(message)));
        }
        let body = object(&members);
        prop_assert_eq!(parse_error_body(body.as_bytes()), None, "{}", body);
    }
}

// ---------------------------------------------------------------------------------------------
// Quoting texts from the wire

proptest! {
    /// A quoted text never holds the secret, is at most 200 characters and has no control
    /// character, wherever the secret sits in it (or not at all).
    #[test]
    fn quotes_withhold_secrets_and_stay_short_and_clean(
        secret in secret(),
        prefix in wire_text(),
        suffix in wire_text(),
        embed in any::<bool>(),
    ) {
        let text = if embed {
            format!("{prefix}{secret}{suffix}")
        } else {
            format!("{prefix}{suffix}")
        };
        let quoted = quote(&text, &[&secret]);
        prop_assert!(!quoted.contains(&secret), "{:?}", quoted);
        prop_assert!(quoted.chars().count() <= EXCERPT_CHARS);
        prop_assert!(!quoted.chars().any(char::is_control), "{:?}", quoted);
        if text.contains(&secret) {
            prop_assert_eq!(quoted, WITHHELD);
        } else if !text.contains("access_token") {
            // Nothing to withhold: the text itself, cut and cleaned.
            let expected: String = text
                .chars()
                .take(EXCERPT_CHARS)
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            prop_assert_eq!(quoted, expected);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The Basic credential

proptest! {
    /// `Basic ` followed by the standard base64 of exactly `id:key`.
    #[test]
    fn basic_authorization_is_base64_of_the_pair(id in any::<String>(), key in any::<String>()) {
        let credential = basic_authorization(&id, &key);
        let value = credential.expose();
        let encoded = value.strip_prefix("Basic ");
        prop_assert!(encoded.is_some(), "no Basic scheme");
        let decoded = STANDARD.decode(encoded.unwrap_or_default());
        prop_assert_eq!(decoded.ok(), Some(format!("{id}:{key}").into_bytes()));
        prop_assert_eq!(value, format!("Basic {}", STANDARD.encode(format!("{id}:{key}"))));
    }
}

// ---------------------------------------------------------------------------------------------
// Origins

proptest! {
    /// Case of scheme and host, the path, and an explicit default port do not change an origin;
    /// another port does.
    #[test]
    fn origins_ignore_case_and_path(
        host in hostname(),
        port in 1u16..=u16::MAX,
        path in "(/[a-z0-9._~-]{0,8}){0,3}",
    ) {
        let (origin, got_path) = Origin::parse(&format!("https://{host}:{port}{path}"))
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let expected_path = if path.is_empty() { "/" } else { path.as_str() };
        prop_assert_eq!(got_path, expected_path);
        let upper = host.to_ascii_uppercase();
        let other = Origin::parse(&format!("HTTPS://{upper}:{port}/other?q=1"))
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(&origin, &other.0);
        prop_assert!(origin.is_secure());
        let bare = Origin::parse(&format!("https://{host}/"))
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(port == 443, bare.0 == origin);
        let base = Origin::parse_base(&format!("https://{upper}:{port}/"));
        prop_assert_eq!(base.as_ref(), Ok(&origin));
        let expected_url = if port == 443 {
            format!("https://{host}")
        } else {
            format!("https://{host}:{port}")
        };
        prop_assert_eq!(origin.to_url(), expected_url);
    }

    /// `http://` to a name that is not loopback is refused as insecure. (Port 0 is refused
    /// as invalid before that: `port_zero_is_refused_whatever_the_host` in the unit tests.)
    #[test]
    fn plain_http_to_other_hosts_is_insecure(
        host in hostname(),
        port in proptest::option::of(valid_port()),
    ) {
        let authority = port.map_or(host.clone(), |p| format!("{host}:{p}"));
        prop_assert_eq!(
            Origin::parse_base(&format!("http://{authority}")),
            Err(UrlError::Insecure)
        );
        prop_assert_eq!(
            Origin::parse(&format!("http://{authority}/v2.01/x")).map(|_| ()),
            Err(UrlError::Insecure)
        );
    }

    /// `http://` to an IPv4 address outside 127.0.0.0/8 is refused as insecure.
    #[test]
    fn plain_http_to_other_addresses_is_insecure(
        first in (0u8..=255).prop_filter("loopback", |&o| o != 127),
        rest in any::<[u8; 3]>(),
        port in valid_port(),
    ) {
        let [b, c, d] = rest;
        prop_assert_eq!(
            Origin::parse_base(&format!("http://{first}.{b}.{c}.{d}:{port}")),
            Err(UrlError::Insecure)
        );
    }

    /// `http://127.x.y.z[:port]` is a valid base URL, kept as given.
    #[test]
    fn plain_http_to_loopback_is_accepted(
        rest in any::<[u8; 3]>(),
        port in valid_port(),
        slash in any::<bool>(),
    ) {
        let [b, c, d] = rest;
        let host = format!("127.{b}.{c}.{d}");
        let slash = if slash { "/" } else { "" };
        let origin = Origin::parse_base(&format!("http://{host}:{port}{slash}"))
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert!(!origin.is_secure());
        let expected_url = if port == 80 {
            format!("http://{host}")
        } else {
            format!("http://{host}:{port}")
        };
        prop_assert_eq!(origin.to_url(), expected_url);
    }
}

// ---------------------------------------------------------------------------------------------
// The same-origin shortcut of the cached path

/// A valid base URL (https to a name; http or https to loopback: 127/8, localhost, IPv6), with
/// its origin and the prefix the shortcut is given (`Origin::to_url`).
fn base_origin() -> impl Strategy<Value = (Origin, String)> {
    let host = prop_oneof![
        hostname(),
        Just("localhost".to_owned()),
        any::<[u8; 3]>().prop_map(|[b, c, d]| format!("127.{b}.{c}.{d}")),
        Just("[::1]".to_owned()),
        Just("[0:0:0:0:0:0:0:1]".to_owned()),
        Just("[2001:DB8::1]".to_owned()),
        Just("10.1.2.3".to_owned()),
    ];
    (any::<bool>(), host, proptest::option::of(valid_port())).prop_filter_map(
        "not a valid base URL",
        |(secure, host, port)| {
            let scheme = if secure { "https" } else { "http" };
            let url = match port {
                Some(port) => format!("{scheme}://{host}:{port}"),
                None => format!("{scheme}://{host}"),
            };
            let origin = Origin::parse_base(&url).ok()?;
            let prefix = origin.to_url();
            Some((origin, prefix))
        },
    )
}

/// The prefix as a request URL might spell it, or something near it: as is, in upper case,
/// the other scheme, user-info before the host, an explicit port, a longer host.
fn spelled(prefix: &str, variant: u8) -> String {
    let (scheme, authority) = prefix.split_once("://").unwrap_or((prefix, ""));
    match variant {
        0 => prefix.to_owned(),
        1 => prefix.to_ascii_uppercase(),
        2 => format!(
            "{}://{authority}",
            if scheme == "https" { "http" } else { "https" }
        ),
        3 => format!("{scheme}://user@{authority}"),
        4 => format!("{prefix}:443"),
        5 => format!("{prefix}:80"),
        _ => format!("{scheme}://www.{authority}"),
    }
}

/// What may follow: more authority (a port, a label, user-info, brackets) or a path and
/// query, with every kind of byte (controls, space, `#`, backslash, non-ASCII) mixed in.
fn after_prefix() -> impl Strategy<Value = String> {
    const TAIL: &str =
        "[a-zA-Z0-9/?#@:%\\[\\]. _~!$&'()*+,;=\\\\\"<>^`{|}\\x00-\\x1f\\x7f\u{e9}-]{0,24}";
    prop_oneof![
        TAIL.prop_map(|t| t),
        ("[/?]", TAIL).prop_map(|(first, t)| format!("{first}{t}")),
        (
            "(:[0-9]{0,6}|\\.[a-z]{1,6}|@[a-z.]{1,12}|\\[[0-9a-f:]{0,8}\\]|:443|:80)",
            TAIL
        )
            .prop_map(|(authority, t)| format!("{authority}{t}")),
        ("[/?]", TAIL, "[\\x00-\\x20\\x7f#]", TAIL)
            .prop_map(|(first, a, bad, b)| format!("{first}{a}{bad}{b}")),
    ]
}

proptest! {
    /// Whenever the shortcut says a URL is on the base origin, the full parser agrees: same
    /// origin, valid URL. (When the shortcut declines, the parser decides alone.)
    #[test]
    fn the_same_origin_shortcut_never_disagrees_with_the_parser(
        (base, prefix) in base_origin(),
        variant in 0u8..7,
        rest in after_prefix(),
    ) {
        let url = format!("{}{rest}", spelled(&prefix, variant));
        if Origin::has_prefix_of(&url, &prefix) {
            prop_assert_eq!(Origin::parse(&url).map(|(o, _)| o), Ok(base), "{:?}", url);
        }
    }

    /// The shortcut is not vacuous: the base URL followed by a path or query of URI
    /// characters takes it, and the parser finds the same origin.
    #[test]
    fn the_same_origin_shortcut_takes_plain_paths(
        (base, prefix) in base_origin(),
        rest in "[/?][a-zA-Z0-9/?@:._~!$&'()*+,;=-]{0,40}",
    ) {
        let url = format!("{prefix}{rest}");
        prop_assert!(Origin::has_prefix_of(&url, &prefix), "{:?}", url);
        prop_assert_eq!(Origin::parse(&url).map(|(o, _)| o), Ok(base), "{:?}", url);
    }
}

// ---------------------------------------------------------------------------------------------
// Pieces of secrets

proptest! {
    /// A text holding any piece of a secret at least `SECRET_PIECE` characters long (an echo
    /// cut short) is withheld, wherever the piece sits.
    #[test]
    fn quotes_withhold_any_long_enough_piece_of_a_secret(
        secret in "[A-Za-z0-9+/=_-]{16,64}",
        start in any::<proptest::sample::Index>(),
        extra in any::<proptest::sample::Index>(),
        prefix in wire_text(),
        suffix in wire_text(),
    ) {
        let start = start.index(secret.len() - SECRET_PIECE + 1);
        let len = SECRET_PIECE + extra.index(secret.len() - start - SECRET_PIECE + 1);
        let piece = secret.get(start..start + len).unwrap_or_default();
        prop_assert!(piece.len() >= SECRET_PIECE);
        let text = format!("{prefix}{piece}{suffix}");
        prop_assert_eq!(quote(&text, &[&secret]), WITHHELD, "{:?}", text);
    }
}

/// The generators above produce what they claim (a guard against a vacuous property).
#[test]
fn generators_cover_the_interesting_cases() {
    let body = object(&[
        ("access_token".to_owned(), json!("t")),
        ("token_type".to_owned(), json!("BeArEr")),
        ("expires_in".to_owned(), json!(37.0)),
    ]);
    assert_eq!(
        body,
        r#"{"access_token":"t","token_type":"BeArEr","expires_in":37.0}"#
    );
    assert_eq!(
        parsed_token(body.as_bytes()),
        Ok(("t".into(), "BeArEr".into(), 37))
    );
}
