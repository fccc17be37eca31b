//! Path patterns: literal segments, `{name}` or `*` for exactly one segment, and `**` for zero or
//! more segments.
//!
//! A pattern is kept as runs of one-segment matchers separated by `**`. The first run must match
//! at the start of the path, the last at its end, and each run between them at its leftmost
//! place after the previous one: taking the leftmost place never loses a match, because the
//! `**` after it can absorb whatever a later place would have skipped. So matching needs no
//! backtracking: every run is tried at most once per path segment, which keeps the work linear
//! in the path (times the pattern's length) whatever the pattern. A recursive matcher took
//! 19 to 29 s on one 64 KB path against `/**/conversations/**/participants/**/x`.
//!
//! Matching allocates nothing: it walks the path with cloned `split` iterators.

/// A compiled path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    /// The runs between `**`s; one run when the pattern has no `**`, otherwise one more than
    /// the number of `**` groups (consecutive `**` are one).
    runs: Vec<Vec<Segment>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    One,
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
        let mut runs = vec![Vec::new()];
        let mut after_many = false;
        for seg in split(rest) {
            let one = match seg {
                "**" => {
                    if !after_many {
                        runs.push(Vec::new());
                    }
                    after_many = true;
                    continue;
                }
                "*" => Segment::One,
                s if s.starts_with('{') && s.ends_with('}') && s.len() > 2 => Segment::One,
                s if s.contains(['*', '{', '}']) => {
                    return Err(PatternError::PartialWildcard(s.into()))
                }
                s => Segment::Literal(s.to_owned()),
            };
            after_many = false;
            runs.last_mut().expect("runs starts non-empty").push(one);
        }
        Ok(PathPattern { runs })
    }

    /// Whether `path` (without the query) matches.
    pub fn matches(&self, path: &str) -> bool {
        let path = path.strip_prefix('/').unwrap_or(path);
        let (first, rest) = self.runs.split_first().expect("a pattern has a run");
        let Some((last, middle)) = rest.split_last() else {
            // No `**`: the path must be exactly the first run.
            let mut parts = split(path);
            return run_matches(first, &mut parts) && parts.next().is_none();
        };
        let total = split(path).count();
        let needed: usize = self.runs.iter().map(Vec::len).sum();
        if total < needed {
            return false;
        }
        let mut parts = split(path);
        if !run_matches(first, &mut parts) {
            return false;
        }
        let mut pos = first.len();
        // The last run is anchored at the end; middle runs must end before it starts.
        let end = total - last.len();
        for run in middle {
            loop {
                if pos + run.len() > end {
                    return false;
                }
                let mut attempt = parts.clone();
                if run_matches(run, &mut attempt) {
                    parts = attempt;
                    pos += run.len();
                    break;
                }
                parts.next();
                pos += 1;
            }
        }
        let mut tail = parts.skip(end - pos);
        run_matches(last, &mut tail)
    }
}

type Parts<'a> = std::iter::Filter<std::str::Split<'a, char>, fn(&&str) -> bool>;

/// Splits on '/' ignoring empty segments, so `/a//b/` and `/a/b` match the same patterns.
fn split(path: &str) -> Parts<'_> {
    path.split('/').filter(|s| !s.is_empty())
}

/// Whether the next `run.len()` parts match `run`, consuming them.
fn run_matches<'a>(run: &[Segment], parts: &mut impl Iterator<Item = &'a str>) -> bool {
    run.iter().all(|seg| match (seg, parts.next()) {
        (_, None) => false,
        (Segment::One, Some(_)) => true,
        (Segment::Literal(lit), Some(part)) => lit == part,
    })
}

// === fuzzing ===

/// The body of the `route_match` fuzz target, shared with the stable-toolchain smoke test. The
/// first byte splits the rest into a pattern and a path, each a few segments over a small
/// alphabet (so they meet often); the matcher must agree with a plain backtracking one.
pub fn fuzz_entry(data: &[u8]) {
    let Some((&split_at, rest)) = data.split_first() else {
        return;
    };
    let (pattern, path) = rest.split_at((split_at as usize).min(rest.len()));
    const PATTERN: [&str; 5] = ["a", "b", "*", "**", "{id}"];
    const PATH: [&str; 3] = ["a", "b", "c"];
    // Bounded so the backtracking reference stays fast.
    let spec: Vec<&str> = pattern
        .iter()
        .take(8)
        .map(|b| PATTERN[*b as usize % 5])
        .collect();
    let parts: Vec<&str> = path
        .iter()
        .take(16)
        .map(|b| PATH[*b as usize % 3])
        .collect();
    let pat = PathPattern::parse(&format!("/{}", spec.join("/"))).expect("valid by construction");
    let got = pat.matches(&format!("/{}", parts.join("/")));
    assert_eq!(
        got,
        backtracking(&spec, &parts),
        "{spec:?} against {parts:?}"
    );
}

/// The obvious recursive matcher, exponential in `**` but plainly right: the reference.
fn backtracking(spec: &[&str], parts: &[&str]) -> bool {
    match spec.split_first() {
        None => parts.is_empty(),
        Some((&"**", rest)) => (0..=parts.len()).any(|k| backtracking(rest, &parts[k..])),
        Some((seg, rest)) => parts.split_first().is_some_and(|(part, tail)| {
            (*seg == "*" || seg.starts_with('{') || seg == part) && backtracking(rest, tail)
        }),
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
        assert!(p("/").matches("/"));
        assert!(!p("/").matches("/a"));
    }

    #[test]
    fn double_star_matches_zero_or_more() {
        let pat = p("/api/v2/scripts/**");
        assert!(pat.matches("/api/v2/scripts"));
        assert!(pat.matches("/api/v2/scripts/1/pages"));
        assert!(!pat.matches("/api/v2/scriptsx"));
        assert!(p("/**/query").matches("/api/v2/analytics/query"));
        assert!(p("/**").matches("/"));
        assert!(p("/**/**").matches("/a/b"));
        assert_eq!(p("/a/**/**/b"), p("/a/**/b"));
    }

    #[test]
    fn middle_runs_take_the_leftmost_place() {
        let pat = p("/**/a/*/**/a/b");
        assert!(pat.matches("/a/x/a/b"));
        assert!(pat.matches("/z/a/x/y/a/b"));
        assert!(!pat.matches("/a/a/b"));
        let pat = p("/x/**/c/**/c");
        assert!(pat.matches("/x/c/c"));
        assert!(!pat.matches("/x/c"));
        assert!(p("/**/a/**").matches("/q/a"));
        assert!(!p("/**/a/**").matches("/q/b"));
    }

    #[test]
    fn agrees_with_a_backtracking_matcher() {
        // Every path of up to five segments over a small alphabet, against patterns that mix
        // all segment kinds: the linear matcher must agree with the obvious recursive one.
        let patterns = [
            "/**/a/**/b/**/a",
            "/a/**/*/b",
            "/**/*/**",
            "/a/**",
            "/**/a",
            "/*/**/b/**",
            "/**/a/b/**/b/a/**",
            "/a/*/**/*/a",
        ];
        let alphabet = ["a", "b", "c"];
        for pattern in patterns {
            let pat = p(pattern);
            let spec: Vec<&str> = pattern[1..].split('/').collect();
            for len in 0..=5u32 {
                for n in 0..alphabet.len().pow(len) {
                    let parts: Vec<&str> = (0..len)
                        .map(|i| alphabet[n / alphabet.len().pow(i) % alphabet.len()])
                        .collect();
                    let path = format!("/{}", parts.join("/"));
                    assert_eq!(
                        pat.matches(&path),
                        backtracking(&spec, &parts),
                        "{pattern} {path}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_long_path_against_many_double_stars_is_fast() {
        let pat = p("/**/conversations/**/participants/**/x");
        let mut path = String::new();
        while path.len() < 64 * 1024 {
            path.push_str("/conversations/participants");
        }
        let started = std::time::Instant::now();
        assert!(!pat.matches(&path));
        path.push_str("/x");
        assert!(pat.matches(&path));
        let took = started.elapsed();
        assert!(took.as_millis() < 50, "two matches took {took:?}");
    }

    #[test]
    fn fuzz_entry_handles_odd_inputs() {
        for data in [
            &b""[..],
            b"\x00",
            b"\xff\x03\x03\x00",
            b"\x04\x03\x00\x03\x01\x00\x01\x02",
        ] {
            fuzz_entry(data);
        }
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
