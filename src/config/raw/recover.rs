//! Every structural problem at once. serde stops at the first unknown key or wrong type, which
//! would hide every other problem in the file until that one is fixed; so after each such error
//! the entry it names is taken out of the text (its lines blanked, so later errors keep their
//! line numbers) and the text parsed again, and validation then runs on what remains.

use super::read::parse;
use super::RawConfig;
use crate::config::{ConfigError, ConfigErrors};

/// At most this many structural errors are collected; a file with more is likely not a pacer
/// config at all, and the first ones say so.
const MAX_STRUCTURAL: usize = 20;

/// Parses `text`, collecting every structural error: the raw config of what parsed (None when
/// nothing could be recovered), the errors in the order found, and the list items taken out
/// whole (see [`Removed`]).
pub fn parse_all(text: &str) -> (Option<RawConfig>, Vec<ConfigError>, Vec<Removed>) {
    let mut errors: Vec<ConfigError> = Vec::new();
    let mut removed: Vec<Removed> = Vec::new();
    let mut text = text.to_owned();
    while errors.len() < MAX_STRUCTURAL {
        let mut err = match parse(&text) {
            Ok(raw) => return (Some(raw), errors, removed),
            Err(errs) => errs.0.into_iter().next().expect("a parse error"),
        };
        err.path = Removed::renumber(&removed, &err.path);
        let Some(line) = err.line.filter(|_| !err.path.is_empty()) else {
            // A syntax error: no field to take out, so nothing more can be learnt.
            errors.push(err);
            break;
        };
        let next = match consequence_in_item(&errors, &err) {
            // A list item lost an entry it cannot do without (a route without `match` after
            // `matchh` went): the item goes whole, and the error is not the user's.
            Some(item) => without_item(&text, line as usize).inspect(|_| removed.push(item)),
            None if errors
                .iter()
                .any(|e| e.line == err.line && e.path == err.path) =>
            {
                None
            }
            None => {
                let next = without_entry(&text, line as usize);
                errors.push(err);
                next
            }
        };
        match next {
            Some(next) => text = next,
            None => break,
        }
    }
    (None, errors, removed)
}

/// A list item taken out whole: later items moved up one, so the errors found after it name
/// `list[index + 1]` and on as they are in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    list: String,
    index: usize,
}

impl Removed {
    /// `path` as in the file, given the items taken out before it was found (latest last).
    pub fn renumber(removed: &[Removed], path: &str) -> String {
        let mut path = path.to_owned();
        for r in removed.iter().rev() {
            let Some(rest) = path.strip_prefix(&format!("{}[", r.list)) else {
                continue;
            };
            let Some((index, tail)) = rest.split_once(']') else {
                continue;
            };
            match index.parse::<usize>() {
                Ok(i) if i >= r.index => path = format!("{}[{}]{tail}", r.list, i + 1),
                _ => {}
            }
        }
        path
    }
}

/// When `err` is a missing field of a list item (`routes[0]`) that an earlier error took an
/// entry out of, the item to take out whole.
fn consequence_in_item(errors: &[ConfigError], err: &ConfigError) -> Option<Removed> {
    if !err.message.starts_with("missing field") {
        return None;
    }
    let (list, index) = err.path.strip_suffix(']')?.rsplit_once('[')?;
    let parent_of = |e: &ConfigError| {
        e.path
            .strip_prefix(err.path.as_str())
            .is_some_and(|rest| rest.starts_with('.'))
    };
    let index = index.parse().ok()?;
    errors.iter().any(parent_of).then(|| Removed {
        list: list.to_owned(),
        index,
    })
}

/// The result of validating what parsed, with the structural errors found before: all of them
/// sorted by line. Validation errors about a section whose entry was taken out (a missing field
/// of `upstreams.x` after `upstreams.x.hostz` went) are left out: they follow from the
/// structural error, not from the file.
pub fn finish<T>(
    structural: Vec<ConfigError>,
    removed: &[Removed],
    validated: Option<Result<T, ConfigErrors>>,
) -> Result<T, ConfigErrors> {
    let mut errors = structural;
    match validated {
        Some(Ok(config)) if errors.is_empty() => return Ok(config),
        Some(Err(found)) => {
            let consequence = |e: &ConfigError| {
                errors.iter().any(|s| {
                    let parent = s.path.strip_prefix(e.path.as_str());
                    parent.is_some_and(|rest| rest.starts_with(['.', '[']))
                })
            };
            let found: Vec<ConfigError> = found
                .0
                .into_iter()
                .map(|mut e| {
                    e.path = Removed::renumber(removed, &e.path);
                    e
                })
                .filter(|e| !consequence(e))
                .collect();
            errors.extend(found);
        }
        _ => {}
    }
    errors.sort_by_key(|e| e.line.unwrap_or(u64::MAX));
    Err(ConfigErrors(errors))
}

/// `text` with the list item around `line` blanked whole: from its dash to its last nested line.
fn without_item(text: &str, line: usize) -> Option<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let at = (0..line.min(lines.len()))
        .rev()
        .find(|&i| lines[i].trim_start().starts_with("- "))?;
    let indent = lines[at].len() - lines[at].trim_start().len();
    let nested = |l: &str| {
        let t = l.trim_start();
        t.is_empty() || t.starts_with('#') || l.len() - t.len() > indent
    };
    let end = at + 1 + lines[at + 1..].iter().take_while(|l| nested(l)).count();
    for l in &mut lines[at..end] {
        l.clear();
    }
    Some(lines.join("\n"))
}

/// `text` with the entry at `line` (1-based) blanked: its key and every line nested under it.
/// A list item keeps its dash, moved to its next key (or left as an empty map), so the list
/// keeps its shape. None when that line holds no entry.
fn without_entry(text: &str, line: usize) -> Option<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let at = line.checked_sub(1)?;
    let body = lines.get(at)?.trim_start();
    if body.is_empty() || body.starts_with('#') {
        return None;
    }
    let indent = lines[at].len() - body.len();
    let item = body.starts_with("- ");
    // The keys of a list item sit two columns in from its dash.
    let key_indent = if item { indent + 2 } else { indent };
    let nested = |l: &str| {
        let t = l.trim_start();
        t.is_empty() || t.starts_with('#') || l.len() - t.len() > key_indent
    };
    let end = at + 1 + lines[at + 1..].iter().take_while(|l| nested(l)).count();
    for l in &mut lines[at..end] {
        l.clear();
    }
    if item {
        let dash = format!("{}- ", " ".repeat(indent));
        match lines.get_mut(end) {
            Some(next) if next.len() - next.trim_start().len() == key_indent => {
                *next = format!("{dash}{}", next.trim_start());
            }
            _ => lines[at] = format!("{dash}{{}}"),
        }
    }
    Some(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_and_what_it_nests_are_blanked_in_place() {
        let text = "a:\n  b: 1\n  bad:\n    - x\n  c: 2\n";
        assert_eq!(without_entry(text, 3).unwrap(), "a:\n  b: 1\n\n\n  c: 2");
    }

    #[test]
    fn later_items_are_named_as_in_the_file_after_one_went() {
        let removed = [Removed {
            list: "routes".into(),
            index: 0,
        }];
        assert_eq!(
            Removed::renumber(&removed, "routes[0].limits"),
            "routes[1].limits"
        );
        assert_eq!(Removed::renumber(&removed, "limits.a"), "limits.a");
    }

    #[test]
    fn a_list_item_keeps_its_dash() {
        let text = "r:\n  - bad: 1\n    ok: 2\n  - bad: 3\n";
        assert_eq!(
            without_entry(text, 2).unwrap(),
            "r:\n\n  - ok: 2\n  - bad: 3"
        );
        assert_eq!(
            without_entry(text, 4).unwrap(),
            "r:\n  - bad: 1\n    ok: 2\n  - {}"
        );
    }
}
