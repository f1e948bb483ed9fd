use super::*;

fn origin(url: &str) -> Origin {
    Origin::parse(url).expect("valid URL").0
}

#[test]
fn default_ports_and_case_do_not_change_the_origin() {
    assert_eq!(
        origin("https://api.mangopay.com/v2.01/x/users"),
        origin("HTTPS://API.Mangopay.com:443/")
    );
    assert_ne!(
        origin("https://api.mangopay.com/"),
        origin("https://api.mangopay.com:8443/")
    );
    assert_ne!(
        origin("https://api.mangopay.com/"),
        origin("https://api.mangopay.com.evil.example/")
    );
}

#[test]
fn http_only_for_loopback() {
    for ok in [
        "http://127.0.0.1:8080",
        "http://127.5.6.7",
        "http://localhost:1/",
        "http://[::1]:9000",
    ] {
        assert!(Origin::parse_base(ok).is_ok(), "{ok}");
    }
    for bad in [
        "http://api.mangopay.com",
        "http://10.0.0.1",
        "http://128.0.0.1",
        "http://localhost.evil.example",
    ] {
        assert_eq!(Origin::parse_base(bad), Err(UrlError::Insecure), "{bad}");
    }
}

#[test]
fn base_url_refusals() {
    for bad in [
        "",
        "api.mangopay.com",
        "/v2.01",
        "ftp://api.mangopay.com",
        "https://user:pw@api.mangopay.com",
        "https://api.mangopay.com/v2.01",
        "https://api.mangopay.com/?a=b",
        "https://api.mangopay.com/#x",
        "https://api.mangopay.com\r\nX: y",
        "https://api.mango\0pay.com",
        "https://:443",
        // Found by fuzzing: http::Uri takes these, the origin must not.
        "https://a[::1]",
        "https://api.mangopay.com[::1]",
        "http://[::1]evil.example",
        "https://api.mangopay.com:99999",
        "https://api.mangopay.com:65536",
        "https://api.mangopay.com:+443",
        "https://api.mangopay.com:",
        "https://api.mangopay.com:0",
        "https://[::1",
        "https://[not-ip]",
        "https://api..mangopay.com",
        "https://.mangopay.com",
    ] {
        assert!(
            matches!(Origin::parse_base(bad), Err(UrlError::Invalid(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn ipv6_and_ports_round_trip() {
    for url in [
        "https://[::1]:8443",
        "https://[2001:DB8::1]",
        "https://api.mangopay.com:8443",
    ] {
        let origin = Origin::parse_base(url).expect("valid");
        assert_eq!(Origin::parse_base(&origin.to_url()), Ok(origin), "{url}");
    }
    assert_eq!(
        origin("https://[2001:DB8::1]/").to_url(),
        "https://[2001:db8::1]"
    );
}

#[test]
fn the_prefix_shortcut_never_accepts_what_parsing_refuses() {
    let base = origin("https://api.mangopay.com");
    let prefix = base.to_url();
    for url in [
        "https://api.mangopay.com/v2.01/x/users?page=2&per_page=10",
        "https://api.mangopay.com?x=1",
        "https://api.mangopay.com/a%20b/~c(d)!$'*+,;=:@",
    ] {
        assert!(Origin::has_prefix_of(url, &prefix), "{url}");
        assert_eq!(
            Origin::parse(url).map(|(o, _)| o),
            Ok(base.clone()),
            "{url}"
        );
    }
    for url in [
        "https://api.mangopay.com",
        "https://api.mangopay.com.evil.example/",
        "https://api.mangopay.com:443/",
        "https://api.mangopay.com@evil.example/",
        "https://api.mangopay.com/a#frag",
        "https://api.mangopay.com/a b",
        "https://api.mangopay.com/\r\n",
        "https://api.mangopay.com/[x]",
        "https://API.mangopay.com/",
    ] {
        assert!(!Origin::has_prefix_of(url, &prefix), "{url}");
    }
    let long = format!("{prefix}/{}", "a".repeat(70_000));
    assert!(!Origin::has_prefix_of(&long, &prefix));
    assert!(Origin::parse(&long).is_err(), "http::Uri refuses it");
}

#[test]
fn to_url_omits_default_port() {
    assert_eq!(
        origin("https://api.mangopay.com:443/x").to_url(),
        "https://api.mangopay.com"
    );
    assert_eq!(
        origin("http://127.0.0.1:8080").to_url(),
        "http://127.0.0.1:8080"
    );
}
