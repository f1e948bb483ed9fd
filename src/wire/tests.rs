use super::*;

#[test]
fn basic_is_base64_of_the_raw_pair() {
    // The example from Mangopay's documentation.
    let basic = basic_authorization(
        "ExampleClientId",
        "PEBB0VDhFENfEhXTUyorTYj6hCVmqL0HRbwY4g5N17ruiPjmQn",
    );
    assert_eq!(
        basic.expose(),
        "Basic RXhhbXBsZUNsaWVudElkOlBFQkIwVkRoRkVOZkVoWFRVeW9yVFlqNmhDVm1xTDBIUmJ3WTRnNU4xN3J1aVBqbVFu"
    );
}

#[test]
fn content_length_matches_body() {
    let headers = token_request_headers("Basic x");
    let length = headers.iter().find(|(n, _)| *n == "content-length");
    assert_eq!(length, Some(&("content-length", "29")));
    assert_eq!(TOKEN_BODY.len(), 29);
}

#[test]
fn parses_the_documented_answer() {
    let body = br#"{"access_token":"094696b3724d4aa5a182eac360dcd537","token_type":"bearer","expires_in":1199}"#;
    let token = parse_token_response(body).expect("valid");
    assert_eq!(
        token.access_token.expose(),
        "094696b3724d4aa5a182eac360dcd537"
    );
    assert_eq!(token.token_type, "bearer");
    assert_eq!(token.expires_in, 1199);
}

#[test]
fn accepts_bearer_in_any_case_and_whole_floats() {
    let token =
        parse_token_response(br#"{"access_token":"t","token_type":"Bearer","expires_in":37.0}"#)
            .expect("valid");
    assert_eq!(
        (token.token_type.as_str(), token.expires_in),
        ("Bearer", 37)
    );
}

#[test]
fn refuses_unusable_answers() {
    use TokenProblem::*;
    let cases: &[(&[u8], TokenProblem)] = &[
        (b"", NotJson),
        (b"<html>502</html>", NotJson),
        (b"[1,2]", NotJson),
        (b"\xff\xfe", NotJson),
        (
            br#"{"token_type":"bearer","expires_in":5}"#,
            MissingAccessToken,
        ),
        (
            br#"{"access_token":7,"token_type":"bearer","expires_in":5}"#,
            MissingAccessToken,
        ),
        (
            br#"{"access_token":"","token_type":"bearer","expires_in":5}"#,
            InvalidAccessToken,
        ),
        (
            br#"{"access_token":"a b","token_type":"bearer","expires_in":5}"#,
            InvalidAccessToken,
        ),
        (
            br#"{"access_token":"a\r\nX: y","token_type":"bearer","expires_in":5}"#,
            InvalidAccessToken,
        ),
        (
            br#"{"access_token":"t","token_type":"mac","expires_in":5}"#,
            UnsupportedTokenType,
        ),
        (
            br#"{"access_token":"t","expires_in":5}"#,
            UnsupportedTokenType,
        ),
        (
            br#"{"access_token":"t","token_type":"bearer"}"#,
            InvalidExpiresIn,
        ),
        (
            br#"{"access_token":"t","token_type":"bearer","expires_in":0}"#,
            InvalidExpiresIn,
        ),
        (
            br#"{"access_token":"t","token_type":"bearer","expires_in":-5}"#,
            InvalidExpiresIn,
        ),
        (
            br#"{"access_token":"t","token_type":"bearer","expires_in":"3600"}"#,
            InvalidExpiresIn,
        ),
        (
            br#"{"access_token":"t","token_type":"bearer","expires_in":1.5}"#,
            InvalidExpiresIn,
        ),
        (
            br#"{"access_token":"t","token_type":"bearer","expires_in":1000000000000}"#,
            InvalidExpiresIn,
        ),
        (
            br#"{"access_token":"t","token_type":"bearer","expires_in":1e300}"#,
            InvalidExpiresIn,
        ),
    ];
    for (body, problem) in cases {
        let got = parse_token_response(body).map(|t| t.expires_in);
        assert_eq!(got, Err(*problem), "{}", String::from_utf8_lossy(body));
    }
}

#[test]
fn reads_sca_challenges() {
    let plain = "PendingUserAction RedirectUrl=https://sca.mangopay.com/?token=abc";
    assert!(is_sca_challenge(plain));
    assert_eq!(
        sca_redirect_url(plain).as_deref(),
        Some("https://sca.mangopay.com/?token=abc")
    );
    let quoted = r#"  pendinguseraction realm="x", RedirectUrl="https://sca.example/a b""#;
    assert!(is_sca_challenge(quoted));
    assert_eq!(
        sca_redirect_url(quoted).as_deref(),
        Some("https://sca.example/a b")
    );
    assert_eq!(sca_redirect_url("PendingUserAction"), None);
    assert!(!is_sca_challenge("Bearer error=\"invalid_token\""));
    assert!(!is_sca_challenge("Pending"));
}

#[test]
fn recognises_both_error_shapes() {
    let api = br#"{"Message":"The authorization credentials are not valid","Type":"invalid_credentials","Id":"9e1f5654-2957-408b-a198-e921ca6830b7","Date":1700772361.0,"errors":null}"#;
    assert_eq!(
        parse_error_body(api),
        Some(ErrorBody::Api {
            message: "The authorization credentials are not valid".into(),
            error_type: "invalid_credentials".into(),
            id: Some("9e1f5654-2957-408b-a198-e921ca6830b7".into()),
            date: Some(1700772361.0),
        })
    );
    let oauth = br#"{"error":"unauthorized_client","error_description":"This account has been temporarily locked for security reasons. Please try again later."}"#;
    assert_eq!(
        parse_error_body(oauth),
        Some(ErrorBody::OAuth {
            error: "unauthorized_client".into(),
            description: Some(
                "This account has been temporarily locked for security reasons. Please try again later.".into()
            ),
        })
    );
    assert_eq!(parse_error_body(b"<html>"), None);
    assert_eq!(parse_error_body(br#"{"foo":1}"#), None);
}
