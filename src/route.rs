//! The route table: `(method, path)` to the route a request belongs to.
//!
//! A route names the limits a request passes and gives the metrics their bounded `route` label
//! (the pattern as written, never the raw path).

use std::sync::Arc;

use http::Method;

use crate::config::{Config, Route};

/// A compiled path pattern: literal segments, `{name}` or `*` for exactly one segment, and `**`
/// for zero or more segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    One,
    Many,
}

/// Why a path pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("a path pattern must start with '/'")]
    NoLeadingSlash,
    #[error("segment {0:?} mixes a wildcard or {{name}} with other text; a wildcard must be a whole segment")]
    PartialWildcard(String),
}

// === impl PathPattern ===

impl PathPattern {
    pub fn parse(pattern: &str) -> Result<PathPattern, PatternError> {
        let rest = pattern
            .strip_prefix('/')
            .ok_or(PatternError::NoLeadingSlash)?;
        let segments = split(rest)
            .map(|seg| match seg {
                "**" => Ok(Segment::Many),
                "*" => Ok(Segment::One),
                s if s.starts_with('{') && s.ends_with('}') && s.len() > 2 => Ok(Segment::One),
                s if s.contains(['*', '{', '}']) => Err(PatternError::PartialWildcard(s.into())),
                s => Ok(Segment::Literal(s.to_owned())),
            })
            .collect::<Result<_, _>>()?;
        Ok(PathPattern { segments })
    }

    /// Whether `path` (without the query) matches.
    pub fn matches(&self, path: &str) -> bool {
        let path = path.strip_prefix('/').unwrap_or(path);
        let parts: Vec<&str> = split(path).collect();
        match_from(&self.segments, &parts)
    }
}

/// Splits on '/' ignoring empty segments, so `/a//b/` and `/a/b` match the same patterns.
fn split(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

fn match_from(pattern: &[Segment], parts: &[&str]) -> bool {
    match pattern.split_first() {
        None => parts.is_empty(),
        Some((Segment::Many, rest)) => {
            (0..=parts.len()).any(|skip| match_from(rest, &parts[skip..]))
        }
        Some((seg, rest)) => match parts.split_first() {
            None => false,
            Some((part, tail)) => {
                let ok = match seg {
                    Segment::Literal(lit) => lit == part,
                    _ => true,
                };
                ok && match_from(rest, tail)
            }
        },
    }
}

/// The routes of a config, ready to match requests.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Arc<[Route]>,
}

// === impl RouteTable ===

impl RouteTable {
    pub fn new(config: &Config) -> RouteTable {
        RouteTable {
            routes: config.routes.clone().into(),
        }
    }

    /// The first route matching the request, with its index, or None (the request passes
    /// unshaped under the `unmatched` label).
    pub fn find(&self, method: &Method, path: &str) -> Option<(usize, &Route)> {
        self.routes
            .iter()
            .enumerate()
            .find(|(_, r)| r.method.as_ref().is_none_or(|m| m == method) && r.path.matches(path))
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathPattern {
        PathPattern::parse(s).unwrap()
    }

    #[test]
    fn literal_and_params() {
        assert!(p("/api/v2/flows/{flowId}").matches("/api/v2/flows/abc"));
        assert!(!p("/api/v2/flows/{flowId}").matches("/api/v2/flows"));
        assert!(!p("/api/v2/flows/{flowId}").matches("/api/v2/flows/abc/x"));
        assert!(p("/api/v2/users").matches("/api/v2/users/"));
    }

    #[test]
    fn double_star_matches_zero_or_more() {
        let pat = p("/api/v2/scripts/**");
        assert!(pat.matches("/api/v2/scripts"));
        assert!(pat.matches("/api/v2/scripts/1/pages"));
        assert!(!pat.matches("/api/v2/scriptsx"));
        assert!(p("/**/query").matches("/api/v2/analytics/query"));
    }

    #[test]
    fn bad_patterns() {
        assert_eq!(PathPattern::parse("api"), Err(PatternError::NoLeadingSlash));
        assert!(matches!(
            PathPattern::parse("/a/b*"),
            Err(PatternError::PartialWildcard(_))
        ));
    }
}
