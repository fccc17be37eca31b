//! Running real Apache JMeter in non-GUI mode and reading its CSV results.
//!
//! JMeter is found at, in order: `$PACER_JMETER`; `jmeter` on PATH (Apache's 5.x); the
//! repository's launcher for Debian's JMeter 2.13 (`examples/jmeter/debian/jmeter`) when that
//! package is installed; `../shared/tools/jmeter` beside the project (a launcher that installs
//! Debian's JMeter on first use, so the first availability check may take minutes).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::support::{external, hex};

/// A whole JMeter run (JVM start included) must end within this.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// The JMeter launcher, when it runs here (checked once per test run).
pub fn jmeter() -> Option<PathBuf> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    let found = FOUND.get_or_init(|| {
        let tool = tool_path()?;
        let ok = external::available(tool.to_str().expect("a UTF-8 path"));
        ok.then_some(tool)
    });
    let what = "Apache JMeter (5.x on PATH, Debian's jmeter and jmeter-http packages, or \
                $PACER_JMETER)";
    external::require_or_skip(what, found.is_some());
    found.clone()
}

/// Where Debian's `jmeter` package puts JMeter.
const DEBIAN_HOME: &str = "/usr/share/jmeter";

fn tool_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PACER_JMETER").filter(|p| !p.is_empty()) {
        return Some(path.into());
    }
    // Debian's own `jmeter` command cannot load a plan (see examples/jmeter/debian/jmeter).
    let debian = |p: &PathBuf| std::fs::canonicalize(p).is_ok_and(|p| p.starts_with(DEBIAN_HOME));
    if let Some(path) = external::on_path("jmeter").filter(|p| !debian(p)) {
        return Some(path);
    }
    if Path::new(DEBIAN_HOME).join("bin/ApacheJMeter.jar").exists() {
        return Some(project().join("examples/jmeter/debian/jmeter"));
    }
    external::beside_repository("jmeter")
}

fn project() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A seed plan in `examples/jmeter/`.
pub fn plan(name: &str) -> PathBuf {
    project().join("examples/jmeter").join(name)
}

/// A fresh scratch directory for one run.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("jmeter")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One row of the JTL.
#[derive(Debug, Clone)]
pub struct Sample {
    pub label: String,
    pub code: String,
    pub success: bool,
    pub url: String,
    pub failure: String,
}

/// Runs `plan` with JMeter's own flags only: `-n -t plan -H 127.0.0.1 -P <proxy port>`, the
/// CSV results settings of `examples/jmeter/results-csv.properties`, `-l` and `-J` properties.
pub async fn run(
    tool: &Path,
    plan: &Path,
    proxy: SocketAddr,
    props: &[(&str, &str)],
    dir: &Path,
) -> Vec<Sample> {
    let jtl = dir.join("results.jtl");
    let mut cmd = tokio::process::Command::new(tool);
    cmd.arg("-n").arg("-t").arg(plan);
    cmd.args([
        "-H",
        &proxy.ip().to_string(),
        "-P",
        &proxy.port().to_string(),
    ]);
    cmd.arg("-q").arg(self::plan("results-csv.properties"));
    cmd.arg("-l")
        .arg(&jtl)
        .arg("-j")
        .arg(dir.join("jmeter.log"));
    cmd.args(props.iter().map(|(k, v)| format!("-J{k}={v}")));
    cmd.current_dir(dir).stdin(Stdio::null()).kill_on_drop(true);
    let out = tokio::time::timeout(RUN_TIMEOUT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("JMeter did not finish within {RUN_TIMEOUT:?}"))
        .expect("JMeter starts");
    let log = || {
        format!(
            "stdout:\n{}\nstderr:\n{}\nlog: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            dir.join("jmeter.log").display()
        )
    };
    assert!(out.status.success(), "JMeter failed: {}", log());
    let text = std::fs::read_to_string(&jtl)
        .unwrap_or_else(|e| panic!("no JTL at {} ({e}): {}", jtl.display(), log()));
    parse_jtl(&text)
}

/// Reads a CSV JTL with a header row.
pub fn parse_jtl(text: &str) -> Vec<Sample> {
    let mut records = csv_records(text).into_iter();
    let header = records.next().expect("a header row");
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no {name} column in {header:?}"))
    };
    let (label, code, success) = (col("label"), col("responseCode"), col("success"));
    let (url, failure) = (col("URL"), col("failureMessage"));
    records
        .map(|r| Sample {
            label: r[label].clone(),
            code: r[code].clone(),
            success: r[success] == "true",
            url: r[url].clone(),
            failure: r[failure].clone(),
        })
        .collect()
}

/// Splits CSV into records of fields; quoted fields may hold commas, quotes ("") and newlines.
fn csv_records(text: &str) -> Vec<Vec<String>> {
    let (mut records, mut record, mut field) = (Vec::new(), Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => record.push(std::mem::take(&mut field)),
            ('\r', false) => {}
            ('\n', false) => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            _ => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

/// A copy of the plan at `from`, written to `dir`, with a response assertion on every sampler:
/// the mock's `x-mock-received-sha256` header must equal the SHA-256 of the plan's raw body with
/// `props` applied, so a sample fails unless its body reached the API byte for byte.
pub fn with_body_check(from: &Path, props: &[(&str, &str)], dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(from).unwrap();
    let body = expand_props(&raw_body(&text), props);
    let sha = hex(&Sha256::digest(body.as_bytes()));
    let assertion = format!(
        r#"
        <ResponseAssertion guiclass="AssertionGui" testclass="ResponseAssertion" testname="body arrived" enabled="true">
          <collectionProp name="Asserion.test_strings">
            <stringProp name="0">x-mock-received-sha256: {sha}</stringProp>
          </collectionProp>
          <stringProp name="Assertion.test_field">Assertion.response_headers</stringProp>
          <boolProp name="Assertion.assume_success">false</boolProp>
          <intProp name="Assertion.test_type">2</intProp>
        </ResponseAssertion>
        <hashTree/>"#
    );
    // The thread group's subtree opens right after it; the assertion applies to all of it.
    let group_end = text.find("</ThreadGroup>").expect("a thread group");
    let tree = group_end + text[group_end..].find("<hashTree>").expect("its subtree");
    let at = tree + "<hashTree>".len();
    let derived = format!("{}{assertion}{}", &text[..at], &text[at..]);
    let path = dir.join(from.file_name().unwrap());
    std::fs::write(&path, derived).unwrap();
    path
}

/// The plan's raw request body (the one `Argument.value`), XML entities decoded.
fn raw_body(plan: &str) -> String {
    let open = r#"<stringProp name="Argument.value">"#;
    let start = plan.find(open).expect("a raw body") + open.len();
    let end = start + plan[start..].find("</stringProp>").unwrap();
    plan[start..end]
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Applies JMeter's `${__P(name,default)}` as JMeter would with `props` given by -J.
pub fn expand_props(text: &str, props: &[(&str, &str)]) -> String {
    let props: HashMap<&str, &str> = props.iter().copied().collect();
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${__P(") {
        let inner = &rest[start + 6..];
        let end = inner.find(")}").expect("a closed ${__P(...)}");
        let (name, default) = inner[..end].split_once(',').unwrap_or((&inner[..end], ""));
        out.push_str(&rest[..start]);
        out.push_str(props.get(name).copied().unwrap_or(default));
        rest = &inner[end + 2..];
    }
    out.push_str(rest);
    out
}
