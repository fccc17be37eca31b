//! `learn:` on limits.

use super::*;

#[test]
fn learn_true_or_settings() {
    let c = ok(&with(&[
        "limits:",
        "  plain: {learn: true}",
        "  off: {rate: 1/s, learn: false}",
        "  pct: {learn: {headroom: 10%}, key: token}",
        "  frac: {learn: {headroom: 0.02}, rate: 5/s, key: client_ip}",
        "  quota: {learn: {}, quota: 300/min, key: 'header:x-user'}",
        "  none: {learn: {headroom: 0%}}",
    ]));
    let headroom = |name: &str| c.learn_for(name).map(|l| l.headroom);
    assert_eq!(headroom("plain"), Some(0.05));
    assert_eq!(headroom("off"), None);
    assert_eq!(headroom("pct"), Some(0.1));
    assert_eq!(headroom("frac"), Some(0.02));
    assert_eq!(headroom("quota"), Some(0.05));
    assert_eq!(headroom("none"), Some(0.0));
}

#[test]
fn learn_false_alone_is_not_a_limit() {
    assert_error(
        &with(&["limits:", "  a:", "    learn: false"]),
        "limits.a, line 4: a limit needs a rate",
        &["learn: true"],
    );
}

#[test]
fn bad_headrooms_name_field_and_line() {
    for (value, part) in [
        ("60%", "from 0% to 50%"),
        ("0.6", "from 0% to 50%"),
        ("-1%", "from 0% to 100%"),
        ("lots", "not a percentage"),
        ("5", "from 0% to 50%"),
    ] {
        let line = format!("      headroom: {value}");
        assert_error(
            &with(&["limits:", "  a:", "    learn:", line.as_str()]),
            "limits.a.learn.headroom, line 6: ",
            &[part],
        );
    }
}

#[test]
fn learn_settings_are_checked() {
    let errs = errors(&with(&["limits:", "  a:", "    learn: {headrom: 5%}"]));
    assert_error_in(&errs, "limits.a.learn", &["headrom"]);
    let errs = errors(&with(&["limits:", "  a:", "    learn: 3"]));
    assert_error_in(&errs, "limits.a.learn", &["true, false, or a map"]);
}

#[test]
fn a_shared_limit_does_not_learn() {
    let errs = errors(&with(&[
        "shared: {redis: 'redis://127.0.0.1:6379'}",
        "limits:",
        "  a: {rate: 5/s, learn: true, shared: true}",
    ]));
    assert_error_in(
        &errs,
        "limits.a.learn, line 5: ",
        &["shared limit does not learn"],
    );
}
