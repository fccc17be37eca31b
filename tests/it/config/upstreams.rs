//! `upstreams` and `default_upstream`.

use super::*;

#[test]
fn bad_base_urls() {
    let check = |url: &str, parts: &[&str]| {
        let line = format!("  api: {{base_url: \"{url}\"}}");
        assert_error(
            &["upstreams:", line.as_str()],
            "upstreams.api.base_url, line 2: ",
            parts,
        );
    };
    check("api.mypurecloud.com", &["not a valid URL"]);
    check("ftp://api.mypurecloud.com", &["http or https"]);
    check("https://api.mypurecloud.com/api/v2", &["path", "/api/v2"]);
    check("https://api.mypurecloud.com/?x=1", &["query"]);
    check("https://api.mypurecloud.com/#top", &["fragment"]);
    check("https://me:s3cret@api.mypurecloud.com", &["credentials"]);
    let errs = errors(&[
        "upstreams:",
        "  api: {base_url: \"https://me:s3cret@api.mypurecloud.com\"}",
    ]);
    assert!(!errs[0].contains("s3cret"), "{errs:?}");
}

#[test]
fn base_url_and_port() {
    let c = ok(&[
        "upstreams:",
        "  mock: {base_url: \"http://127.0.0.1:9000/\"}",
    ]);
    assert_eq!(c.upstreams[0].base_url.as_str(), "http://127.0.0.1:9000/");
    assert_eq!(c.upstreams[0].hosts, ["127.0.0.1"]);
}

#[test]
fn unknown_region_lists_the_valid_ones() {
    assert_error(
        &["upstreams:", "  genesys:", "    region: us-east-9"],
        "upstreams.genesys.region, line 3: unknown region \"us-east-9\"; valid regions: us-east-1, ",
        &["eu-central-2", "ap-southeast-2", "us-east-2"],
    );
}

#[test]
fn regions_map_to_base_urls() {
    for (region, url) in [
        ("eu-west-1", "https://api.mypurecloud.ie/"),
        ("ap-northeast-1", "https://api.mypurecloud.jp/"),
        ("us-west-2", "https://api.usw2.pure.cloud/"),
        ("us-east-2", "https://api.use2.us-gov-pure.cloud/"),
    ] {
        let line = format!("  g: {{region: {region}}}");
        let c = ok(&["upstreams:", line.as_str()]);
        assert_eq!(c.upstreams[0].base_url.as_str(), url);
    }
}

#[test]
fn exactly_one_of_region_and_base_url() {
    assert_error(
        &[
            "upstreams:",
            "  genesys:",
            "    region: us-east-1",
            "    base_url: https://api.mypurecloud.com",
        ],
        "upstreams.genesys, line 2: set either region or base_url, not both",
        &[],
    );
    assert_error(
        &[
            "upstreams:",
            "  genesys:",
            "    hosts: [api.mypurecloud.com]",
        ],
        "upstreams.genesys, line 2: set region",
        &["base_url"],
    );
}

#[test]
fn hosts_are_lower_cased_and_checked() {
    let c = ok(&[
        "upstreams:",
        "  g: {region: us-east-1, hosts: [API.MyPureCloud.com, apps.mypurecloud.com]}",
    ]);
    assert_eq!(
        c.upstreams[0].hosts,
        ["api.mypurecloud.com", "apps.mypurecloud.com"]
    );
    assert_error(
        &[
            "upstreams:",
            "  g:",
            "    region: us-east-1",
            "    hosts:",
            "      - https://api.mypurecloud.com",
        ],
        "upstreams.g.hosts, line 5: \"https://api.mypurecloud.com\" is not a host name",
        &[],
    );
    assert_error(
        &["upstreams:", "  g: {region: us-east-1, hosts: []}"],
        "upstreams.g.hosts, line 2: list at least one host",
        &[],
    );
}

#[test]
fn a_host_belongs_to_one_upstream() {
    assert_error(
        &[
            "upstreams:",
            "  a:",
            "    region: us-east-1",
            "  b:",
            "    base_url: http://127.0.0.1:9000",
            "    hosts:",
            "      - localhost",
            "      - api.mypurecloud.com",
        ],
        "upstreams.b.hosts, line 8: host api.mypurecloud.com is also served by upstream a",
        &[],
    );
    // Two upstreams on the same region clash through the default host.
    assert_error(
        &[
            "upstreams:",
            "  a: {region: us-east-1}",
            "  b: {region: us-east-1}",
        ],
        "upstreams.b.hosts, line 3: host api.mypurecloud.com is also served by upstream a",
        &[],
    );
}

#[test]
fn upstreams_keep_file_order() {
    let c = ok(&[
        "upstreams:",
        "  zeta: {region: eu-west-1}",
        "  alpha: {region: us-east-1}",
        "default_upstream: alpha",
    ]);
    let names: Vec<_> = c.upstreams.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["zeta", "alpha"]);
    assert_eq!(c.default_upstream, Some(1));
    assert_eq!(c.upstream("alpha").unwrap().hosts, ["api.mypurecloud.com"]);
}

#[test]
fn default_upstream_must_exist() {
    assert_error(
        &[
            "upstreams:",
            "  a: {region: us-east-1}",
            "  b: {region: eu-west-1}",
            "default_upstream: c",
        ],
        "default_upstream, line 4: unknown upstream \"c\"; defined upstreams: a, b",
        &[],
    );
    let c = ok(&[
        "upstreams:",
        "  a: {region: us-east-1}",
        "  b: {region: eu-west-1}",
    ]);
    assert_eq!(c.default_upstream, None);
}

#[test]
fn ca_file_is_relative_to_the_config_and_must_exist() {
    let dir = crate::support::temp_dir("config");
    std::fs::write(dir.join("roots.pem"), "not checked here").unwrap();
    let file = dir.join("pacer.yaml");
    let text = |ca: &str| {
        yaml(&[
            "upstreams:",
            &format!("  g: {{region: us-east-1, tls: {{ca_file: {ca}}}}}"),
        ])
    };

    std::fs::write(&file, text("roots.pem")).unwrap();
    let c = Config::load(&file).unwrap();
    assert_eq!(c.upstreams[0].ca_file, Some(dir.join("roots.pem")));

    std::fs::write(&file, text("missing.pem")).unwrap();
    let err = Config::load(&file).unwrap_err().to_string();
    assert!(
        err.starts_with("upstreams.g.tls.ca_file, line 2: cannot read ")
            && err.contains("missing.pem"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_config_file() {
    let err = Config::load(Path::new("/nonexistent/pacer.yaml")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/pacer.yaml"), "{err}");
}

#[test]
fn retry_after_units() {
    use pacer::config::RetryAfterUnit;
    let c = ok(MINIMAL);
    assert_eq!(c.upstreams[0].retry_after_unit, RetryAfterUnit::Seconds);
    let c = ok(&[
        "upstreams:",
        "  api: {base_url: 'https://x.example', retry_after_unit: milliseconds}",
    ]);
    assert_eq!(
        c.upstreams[0].retry_after_unit,
        RetryAfterUnit::Milliseconds
    );
    assert_error(
        &[
            "upstreams:",
            "  api: {base_url: 'https://x.example', retry_after_unit: ms}",
        ],
        "upstreams.api.retry_after_unit, line 2: ",
        &["seconds or milliseconds"],
    );
}
