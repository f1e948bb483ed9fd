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
