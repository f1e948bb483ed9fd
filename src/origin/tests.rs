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
        // Found by fuzzing: lenient URI parsers (the `http` crate) take these, the origin
        // must not.
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
    assert!(
        Origin::parse(&long).is_err(),
        "longer than the http crate takes"
    );
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

#[test]
fn ip_literals_compare_canonically() {
    for (a, b) in [
        ("http://[0:0:0:0:0:0:0:1]:8080", "http://[::1]:8080"),
        ("http://[0::1]:8080/x", "http://[::1]:8080"),
        ("https://[2001:DB8:0:0:0:0:0:1]/", "https://[2001:db8::1]"),
        ("https://[2001:db8::0:1]", "https://[2001:db8::1]:443"),
        ("http://127.1:8080", "http://127.0.0.1:8080"),
        ("http://0x7f.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://0177.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://2130706433:8080", "http://127.0.0.1:8080"),
        ("https://10.0.258", "https://10.0.1.2"),
    ] {
        assert_eq!(origin(a), origin(b), "{a} = {b}");
    }
    assert_eq!(
        origin("http://[0:0:0:0:0:0:0:1]:1").to_url(),
        "http://[::1]:1"
    );
    assert_eq!(origin("http://0x7f.1").to_url(), "http://127.0.0.1");
    assert_eq!(
        Origin::parse_base("http://[0:0:0:0:0:0:0:1]:9000").map(|o| o.is_secure()),
        Ok(false),
        "loopback in any spelling"
    );
    for bad in [
        "https://1.2.3.4.5",
        "https://256.0.0.1",
        "https://1.2.3.256",
        "https://1.2.65536",
        "https://4294967296",
        "https://0x100.0.0.1",
        "https://09.0.0.1",
        "https://1.2.3.0x",
        "https://[::1%25eth0]",
    ] {
        let got = Origin::parse_base(bad);
        // "0x" alone is 0 to URL parsers, so 1.2.3.0x is 1.2.3.0.
        if bad.ends_with("0x") {
            assert_eq!(got, Origin::parse_base("https://1.2.3.0"), "{bad}");
            continue;
        }
        assert!(matches!(got, Err(UrlError::Invalid(_))), "{bad}: {got:?}");
    }
    for insecure in ["http://[::2]", "http://[::ffff:127.0.0.1]", "http://128.1"] {
        assert_eq!(
            Origin::parse_base(insecure),
            Err(UrlError::Insecure),
            "{insecure}"
        );
    }
}

#[test]
fn an_authority_matches_ignoring_case_default_ports_and_ip_spelling() {
    let https = origin("https://API.Mangopay.com");
    for same in ["api.mangopay.com", "API.MANGOPAY.COM:443"] {
        assert!(https.has_authority(same), "{same}");
    }
    for other in [
        "api.mangopay.com:80",
        "api.mangopay.com:",
        "api.mangopay.com.",
        "evil.example",
        "user@api.mangopay.com",
        "",
    ] {
        assert!(!https.has_authority(other), "{other:?}");
    }
    let v6 = origin("http://[::1]:8080");
    assert!(v6.has_authority("[0:0:0:0:0:0:0:1]:8080"));
    assert!(!v6.has_authority("[::1]"));
    let v4 = origin("http://127.0.0.1");
    assert!(v4.has_authority("127.1:80"));
    assert!(!v4.has_authority("localhost"));
}

#[test]
fn port_zero_is_refused_whatever_the_host() {
    for url in [
        "https://api.mangopay.com:0",
        "http://api.mangopay.com:0",
        "http://127.0.0.1:0",
        "http://10.0.0.1:0",
        "http://[::1]:0",
        "http://localhost:00000",
    ] {
        assert_eq!(
            Origin::parse_base(url),
            Err(UrlError::Invalid("port out of range")),
            "{url}"
        );
    }
}

#[test]
fn paths_and_queries_hold_only_what_http_servers_take() {
    for (url, path) in [
        ("https://api.mangopay.com", "/"),
        ("https://api.mangopay.com?x=1", "?x=1"),
        ("https://api.mangopay.com/a/b?c=d&e=/?f", "/a/b?c=d&e=/?f"),
        // As the `http` crate (so hyper) takes them: JSON in a path, a backtick in a query.
        ("https://api.mangopay.com/{\"a\"}|\\^", "/{\"a\"}|\\^"),
        ("https://api.mangopay.com/?`{}|^", "/?`{}|^"),
    ] {
        assert_eq!(Origin::parse(url).map(|(_, p)| p), Ok(path.to_owned()));
    }
    for bad in [
        "https://api.mangopay.com/<",
        "https://api.mangopay.com/>",
        "https://api.mangopay.com/`",
        "https://api.mangopay.com/?\"",
        "https://api.mangopay.com?<",
        "https://api.mangopay.com/?>",
        "https:///x",
        "https:/api.mangopay.com",
        "//api.mangopay.com/",
    ] {
        assert!(
            matches!(Origin::parse(bad), Err(UrlError::Invalid(_))),
            "{bad:?}"
        );
    }
    let base = "https://api.mangopay.com/";
    let longest = format!("{base}{}", "a".repeat(65_534 - base.len()));
    assert!(Origin::parse(&longest).is_ok());
    assert!(Origin::parse(&format!("{longest}a")).is_err());
}

#[test]
fn ipv6_hosts_are_written_as_rfc_5952_says_like_std() {
    for text in [
        "::",
        "::1",
        "1::",
        "1:0:0:2::",
        "1::2:0:0:3",
        "2001:db8::1",
        "1:2:3:4:5:6:7:8",
        "0:1:0:1:0:1:0:1",
        "1:0:2:0:0:3:0:0",
        "fe80::1:0:0:0",
        "::ffff:7f00:1",
        "0:0:1::",
        "abcd:ef01:2345:6789:abcd:ef01:2345:6789",
        "1:0:0:2:0:0:0:3",
    ] {
        let ip: Ipv6Addr = text.parse().expect("an address");
        let expected = match ip.to_ipv4_mapped() {
            // std writes these the IPv4 way; RFC 5952 allows either.
            Some(_) => "[::ffff:7f00:1]".to_owned(),
            None => format!("[{ip}]"),
        };
        assert_eq!(bracketed(ip), expected, "{text}");
    }
}

#[test]
fn every_pattern_of_zero_groups_is_written_like_std() {
    for bits in 0u16..256 {
        let groups: Vec<u16> = (0..8).map(|i| (bits >> i & 1) * (0x10 + i)).collect();
        let ip = Ipv6Addr::from(<[u16; 8]>::try_from(groups).expect("8 groups"));
        assert_eq!(bracketed(ip), format!("[{ip}]"));
    }
}

#[test]
fn only_the_api_mtls_hosts_are_mtls() {
    for (url, mtls) in [
        ("https://api-mtls.sandbox.mangopay.com", true),
        ("https://API-MTLS.mangopay.com:443", true),
        ("https://api.mangopay.com", false),
        ("https://api.sandbox.mangopay.com", false),
        ("https://x.api-mtls.mangopay.com", false),
        ("http://127.0.0.1:8080", false),
    ] {
        assert_eq!(origin(url).is_mtls(), mtls, "{url}");
    }
}
