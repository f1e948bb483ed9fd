use super::*;

#[test]
fn quotes_never_hold_secrets() {
    assert_eq!(quote("echo: my-api-key", &["my-api-key"]), WITHHELD);
    assert_eq!(quote(r#"{"access_token":"abc"}"#, &[]), WITHHELD);
    assert_eq!(quote("fine", &["", "k"]), "fine");
}

#[test]
fn escaped_secrets_are_found_too() {
    let body = br#"{"detail":"key \u006dy-api-key"}"#;
    assert_eq!(excerpt(body, &["my-api-key"]), WITHHELD);
    assert_eq!(
        excerpt(br#"{"detail":"fine"}"#, &["my-api-key"]),
        r#"{"detail":"fine"}"#
    );
}

#[test]
fn the_secrets_are_the_key_the_credential_and_the_token() {
    let config = crate::fakes::config();
    let settings = Settings::new(config).expect("valid");
    // base64("my-client:my-api-key")
    let credential = "bXktY2xpZW50Om15LWFwaS1rZXk=";
    assert_eq!(secrets(&settings, "tok"), ["my-api-key", credential, "tok"]);
}

#[test]
fn truncated_and_escaped_echoes_of_a_secret_are_withheld() {
    let mut config = crate::fakes::config();
    config.api_key = crate::secret::Secret::new("sk-live-0123456789abcdefghij".into());
    let settings = Settings::new(config).expect("valid");
    let token = "4f9c2e7a1b3d5f60718293a4b5c6d7e8";
    let secrets = secrets(&settings, token);
    let credential = secrets[1].to_owned();
    let piece =
        |s: &str, from: usize, len: usize| s.get(from..from + len).unwrap_or_default().to_owned();
    for echo in [
        // A gateway that logs the first bytes of the header.
        format!(
            "bad gateway: Authorization: Basic {}...",
            piece(&credential, 0, 16)
        ),
        format!("header was {}", piece(&credential, 9, 17)),
        "key sk-live-0123456789ab".to_owned(),
        format!("Bearer {}…", piece(token, 0, 16)),
        format!("…{} (cut)", piece(token, 16, 16)),
        // Escaped: JSON and percent-encoding.
        format!(r#"{{"seen":"\u0034\u0066{}"}}"#, piece(token, 2, 14)),
        format!(
            "auth=Basic%20{}",
            piece(&credential, 0, 20).replace('=', "%3D")
        ),
        format!("token%3D{}", piece(token, 0, 16).replace('f', "%66")),
    ] {
        assert_eq!(quote(&echo, &secrets), WITHHELD, "{echo}");
        assert_eq!(excerpt(echo.as_bytes(), &secrets), WITHHELD, "{echo}");
    }
    // Pieces shorter than SECRET_PIECE are too common to withhold.
    for fine in [
        format!("Basic {}", piece(&credential, 0, 15)),
        format!("id {}", piece(token, 3, 15)),
        "sk-live-0123456".to_owned(),
        "upstream timeout".to_owned(),
    ] {
        assert_eq!(quote(&fine, &secrets), fine, "{fine}");
    }
    // A secret no longer than a piece still withholds only whole.
    assert_eq!(quote("key my-api", &["my-api-key"]), "key my-api");
    assert_eq!(quote("key my-api-key!", &["my-api-key"]), WITHHELD);
}
