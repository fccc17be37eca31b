//! `${VAR}` in scenario values: secrets and targets come from the environment, not the file.
//!
//! Expansion happens while the YAML is deserialized, so a missing variable is reported like any
//! other mistake, with the field path and line. The environment is read through a lookup set for
//! the duration of one parse (a thread-local, because serde's `Deserialize` has no context to
//! carry it), so tests can parse with a map instead of mutating the process environment.

use std::cell::RefCell;
use std::path::PathBuf;

/// Where variables come from: the process environment, or a map in tests.
pub type Lookup = Box<dyn Fn(&str) -> Option<String>>;

thread_local! {
    static LOOKUP: RefCell<Option<Lookup>> = const { RefCell::new(None) };
    /// The scenario file's directory, which relative file names (`tls.ca_file`) start from.
    static BASE: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
}

/// Runs `parse` with relative file names read from `dir`.
pub fn with_base<R>(dir: Option<PathBuf>, parse: impl FnOnce() -> R) -> R {
    let previous = BASE.with(|b| b.replace(dir));
    let out = parse();
    BASE.with(|b| *b.borrow_mut() = previous);
    out
}

/// `file` as given when absolute, else joined to the scenario's directory (or the current one).
pub fn resolve(file: &str) -> PathBuf {
    BASE.with(|b| match &*b.borrow() {
        Some(dir) => dir.join(file),
        None => PathBuf::from(file),
    })
}

/// Runs `parse` with `lookup` as the environment that [`expand`] reads.
pub fn with_env<R>(lookup: Lookup, parse: impl FnOnce() -> R) -> R {
    /// Restores the previous lookup, even if `parse` panics.
    struct Restore(Option<Lookup>);
    impl Drop for Restore {
        fn drop(&mut self) {
            LOOKUP.with(|l| *l.borrow_mut() = self.0.take());
        }
    }
    let previous = LOOKUP.with(|l| l.borrow_mut().replace(lookup));
    let _restore = Restore(previous);
    parse()
}

/// Looks a variable up in the environment of the running parse, or the process's own.
fn lookup(name: &str) -> Option<String> {
    LOOKUP.with(|l| match &*l.borrow() {
        Some(f) => f(name),
        None => std::env::var(name).ok(),
    })
}

/// Replaces `${VAR}` with the variable's value and `${VAR:-default}` with the value or, when
/// unset or empty, the default. `$$` is a literal `$`; any other `$` stays as it is.
pub fn expand(text: &str) -> Result<String, String> {
    if !text.contains('$') {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {text:?}; write ${{NAME}}"))?;
            out.push_str(&variable(&body[..end])?);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The value of `NAME` or `NAME:-default`.
fn variable(spec: &str) -> Result<String, String> {
    let (name, default) = match spec.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (spec, None),
    };
    let valid = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        return Err(format!(
            "${{{spec}}} is not a variable; names are letters, digits and _"
        ));
    }
    match (lookup(name).filter(|v| !v.is_empty()), default) {
        (Some(value), _) => Ok(value),
        (None, Some(default)) => Ok(default.to_owned()),
        (None, None) => Err(format!("environment variable {name} is not set")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "ID" => Some("abc".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn run(text: &str) -> Result<String, String> {
        with_env(Box::new(env), || expand(text))
    }

    #[test]
    fn expands_variables_and_defaults() {
        assert_eq!(run("plain").unwrap(), "plain");
        assert_eq!(run("${ID}").unwrap(), "abc");
        assert_eq!(run("x-${ID}-y").unwrap(), "x-abc-y");
        assert_eq!(run("${NOPE:-dflt}").unwrap(), "dflt");
        assert_eq!(run("${EMPTY:-dflt}").unwrap(), "dflt");
        assert_eq!(run("${ID:-dflt}").unwrap(), "abc");
        assert_eq!(run("$$ID and $5").unwrap(), "$ID and $5");
    }

    #[test]
    fn explains_what_is_wrong() {
        assert!(run("${NOPE}").unwrap_err().contains("NOPE is not set"));
        assert!(run("${ID").unwrap_err().contains("unclosed"));
        assert!(run("${1X}").unwrap_err().contains("not a variable"));
    }

    #[test]
    fn the_lookup_is_gone_after_the_parse() {
        run("${ID}").unwrap();
        assert!(LOOKUP.with(|l| l.borrow().is_none()));
    }
}
