//! The discovered limits as a config (`--discover-out`) and as log lines at shutdown.
//!
//! The written file is the running config's own text with its `limits:` and `routes:`
//! sections replaced: the upstreams and everything else stay as the user wrote them, comments
//! included. Configured routes keep their patterns, in order, with the limit discovered for
//! them (or none); groups of unmatched requests with a discovered limit follow as routes of
//! their own. Each limit carries a comment saying what it was learned from.
//!
//! Advertised quotas that are the same on several routes (same quota, window and key) are
//! written as one limit those routes share: an API that advertises one budget per token on
//! every endpoint (Genesys Cloud does) counts all of them against it, and one limit per route
//! would let each route spend the whole budget. Where the routes really have budgets of their
//! own, sharing costs throughput, never a 429.

use std::fmt::Write;

use super::{Report, Source};

/// Top-level keys of the running config that the written one replaces.
const REPLACED: [&str; 2] = ["limits", "routes"];

/// The config to keep: `base` (the running config's text) with the discovered limits and
/// routes in place of its own.
pub fn write_config(report: &Report, base: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Limits discovered by pacer over {:.0}s of traffic (pacer proxy --discover-out).\n\
         # Each says what it was learned from; check them against the API's documentation.",
        report.recording_s
    );
    out.push_str(&without_sections(base, &REPLACED));
    if !out.ends_with('\n') {
        out.push('\n');
    }
    let mut names = Names::default();
    let mut limits = String::new();
    let mut routes = String::new();
    let mut quiet = Vec::new();
    // Advertised budgets already written, by (limit, key): their limit's name.
    let mut budgets: Vec<((String, &str), String)> = Vec::new();
    for g in &report.groups {
        let limit = g.discovered.as_ref().map(|f| {
            let budget = (f.limit.yaml(), f.key);
            let shared = budgets.iter().find(|(b, _)| *b == budget);
            if let (Source::Advertised, Some((_, name))) = (f.source, shared) {
                let _ = writeln!(limits, "  # {name} also: {}: {}", g.route, f.from);
                return name.clone();
            }
            // A budget the API advertised may be shared by routes: named for what it is.
            let name = match (f.source, f.key) {
                (Source::Advertised, "token") => names.name_for("per-token"),
                (Source::Advertised, _) => names.name_for("advertised"),
                _ => names.name_for(&g.route),
            };
            let key = if f.key == "token" { ", key: token" } else { "" };
            let _ = writeln!(limits, "  # {}: {}", g.route, f.from);
            let _ = writeln!(limits, "  {name}: {{ {}{key} }}", f.limit.yaml());
            if f.source == Source::Advertised {
                budgets.push((budget, name.clone()));
            }
            name
        });
        match (g.configured, limit) {
            (true, limit) => {
                let limits = limit.map(|l| format!("[{l}]")).unwrap_or("[]".into());
                let _ = writeln!(
                    routes,
                    "  - {{ match: {}, limits: {limits} }}",
                    quote(&g.route)
                );
            }
            (false, Some(l)) => {
                let _ = writeln!(
                    routes,
                    "  - {{ match: {}, limits: [{l}] }}",
                    quote(&g.route)
                );
            }
            (false, None) => quiet.push(&g.route),
        }
    }
    out.push_str(if limits.is_empty() {
        "limits: {}\n"
    } else {
        "limits:\n"
    });
    out.push_str(&limits);
    out.push_str(if routes.is_empty() {
        "routes: []\n"
    } else {
        "routes:\n"
    });
    out.push_str(&routes);
    if !quiet.is_empty() {
        out.push_str("# No limit seen (no 429, no rate-limit headers) on:\n");
        for r in quiet {
            let _ = writeln!(out, "#   {r}");
        }
    }
    out
}

/// One INFO line per discovered limit, and one saying how many groups showed none.
pub fn log_findings(report: &Report) {
    let mut none = 0;
    for g in &report.groups {
        match &g.discovered {
            Some(f) => tracing::info!(
                route = %g.route,
                limit = %f.limit.yaml(),
                key = f.key,
                from = %f.from,
                "discovered limit"
            ),
            None => none += 1,
        }
    }
    tracing::info!(
        groups = report.groups.len(),
        without_limit = none,
        "discovery finished"
    );
}

/// `text` without the top-level sections named `keys`: each from its `key:` line at column 0
/// to the next line at column 0 that is not a comment.
fn without_sections(text: &str, keys: &[&str]) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        let top = line.starts_with(|c: char| !c.is_whitespace() && c != '#');
        if top {
            skipping = keys.iter().any(|k| {
                line.strip_prefix(k)
                    .is_some_and(|rest| rest.trim_start().starts_with(':'))
            });
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// A YAML double-quoted scalar (JSON's escapes are YAML's).
fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// Limit names made from route patterns: letters, digits and '-', unique.
#[derive(Default)]
struct Names {
    taken: std::collections::HashSet<String>,
}

impl Names {
    fn name_for(&mut self, route: &str) -> String {
        let mut base = String::new();
        for c in route.chars() {
            match c {
                c if c.is_ascii_alphanumeric() => base.push(c.to_ascii_lowercase()),
                '*' if base.is_empty() => base.push_str("any"),
                _ if !base.ends_with('-') && !base.is_empty() => base.push('-'),
                _ => {}
            }
        }
        let base = base.trim_end_matches('-').to_owned();
        let base = if base.is_empty() {
            "limit".to_owned()
        } else {
            base
        };
        let mut name = base.clone();
        let mut n = 2;
        while !self.taken.insert(name.clone()) {
            name = format!("{base}-{n}");
            n += 1;
        }
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_replaced_and_the_rest_kept() {
        let base = "# mine\nupstreams:\n  api: { base_url: 'http://x' }\nlimits:\n  a: { rate: 1/s }\n# about routes\nroutes:\n  - { match: 'GET /a', limits: [a] }\nadmin: 127.0.0.1:9091\n";
        let out = without_sections(base, &REPLACED);
        assert_eq!(
            out,
            "# mine\nupstreams:\n  api: { base_url: 'http://x' }\nadmin: 127.0.0.1:9091\n"
        );
    }

    #[test]
    fn names_are_valid_and_unique() {
        let mut n = Names::default();
        assert_eq!(n.name_for("GET /api/v2/users/{id}"), "get-api-v2-users-id");
        assert_eq!(
            n.name_for("GET /api/v2/users/{id}"),
            "get-api-v2-users-id-2"
        );
        assert_eq!(n.name_for("* /api/v2/**"), "any-api-v2");
        assert_eq!(n.name_for("other"), "other");
    }
}
