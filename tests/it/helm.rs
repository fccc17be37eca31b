//! The Helm chart (`helm/pacer`), the sidecar example and the image, checked with the real helm
//! binary: lint, rendering with the default values and every file in `helm/pacer/ci/`, the
//! schema refusing bad values, and the config rendered into the ConfigMap accepted by
//! `pacer check`, so chart and binary cannot drift apart.
//!
//! helm is run through `$PACER_HELM`, else `helm` on PATH, else `../shared/tools/helm` beside
//! the repository (a launcher that fetches helm with npm on first use). When it cannot run,
//! every test here skips loudly, or fails under `PACER_REQUIRE_EXTERNAL=1`.
//!
//! Sections live under `tests/it/helm/`; this file holds what they share.

mod chart;
mod shared;
mod sidecar;
mod values;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support;
use crate::support::repo;

/// A helm run that takes longer is stuck; the first run may download helm (about 35 MB).
const HELM_TIMEOUT: Duration = Duration::from_secs(60);
const FETCH_TIMEOUT: Duration = Duration::from_secs(300);

pub const RELEASE: &str = "pacer-test";
/// The chart's objects are named after the release (it already contains "pacer").
pub const FULL: &str = RELEASE;

pub fn chart_dir() -> PathBuf {
    repo("helm/pacer")
}

/// The values files under `helm/pacer/ci/`, sorted.
pub fn ci_values() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(chart_dir().join("ci"))
        .expect("helm/pacer/ci exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no values files in helm/pacer/ci");
    files
}

/// The helm launcher, once it has run `helm version`; None (after a loud skip) when it cannot.
/// The probe runs once per test process, so a first-use download never runs twice at once.
pub fn helm() -> Option<&'static Path> {
    static HELM: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = HELM.get_or_init(|| {
        let Some(path) = support::external::locate("helm", "PACER_HELM") else {
            return Err("helm is not on PATH (install helm 3, or set PACER_HELM)".to_owned());
        };
        let out = run(Command::new(&path).arg("version"), FETCH_TIMEOUT)?;
        if out.status.success() {
            Ok(path)
        } else {
            Err(format!(
                "`helm version` failed (the shared launcher needs npm on first use: \
                 apt-get install -y npm): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    });
    match found {
        Ok(path) => Some(path),
        Err(msg) => {
            support::external::unavailable(msg);
            None
        }
    }
}

/// Runs `cmd` to completion or kills it after `timeout`.
pub fn run(cmd: &mut Command, timeout: Duration) -> Result<Output, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    // Readers on their own threads, so a chatty child never blocks on a full pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stdout.read_to_end(&mut buf).map(|_| buf)
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stderr.read_to_end(&mut buf).map(|_| buf)
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{cmd:?} did not finish within {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Output {
        status,
        stdout: out.join().unwrap().unwrap_or_default(),
        stderr: err.join().unwrap().unwrap_or_default(),
    })
}

/// `helm <args>`, whatever its exit status.
pub fn helm_run(helm: &Path, args: &[&str]) -> Output {
    run(Command::new(helm).args(args), HELM_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
}

/// `helm template` of `chart` with extra arguments (`-f`, `--set`): the rendered documents.
pub fn render_chart(helm: &Path, chart: &Path, args: &[&str]) -> Vec<Value> {
    parse_docs(&render_text(helm, RELEASE, chart, args))
}

pub fn render_text(helm: &Path, release: &str, chart: &Path, args: &[&str]) -> String {
    let chart = chart.to_str().unwrap();
    let out = helm_run(helm, &[&["template", release, chart], args].concat());
    assert!(
        out.status.success(),
        "helm template {chart} {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `helm template` of pacer's chart.
pub fn render(helm: &Path, args: &[&str]) -> Vec<Value> {
    render_chart(helm, &chart_dir(), args)
}

/// `-f <file>` for a values file.
pub fn values_arg(file: &Path) -> [&str; 2] {
    ["-f", file.to_str().unwrap()]
}

/// Multi-document YAML into JSON values, empty documents dropped.
pub fn parse_docs(text: &str) -> Vec<Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text)
        .unwrap_or_else(|e| panic!("rendered YAML does not parse: {e}\n{text}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// The document of `kind` named `name`.
pub fn find<'a>(docs: &'a [Value], kind: &str, wanted: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && name(d) == wanted)
        .unwrap_or_else(|| panic!("no {kind}/{wanted} in {:?}", kinds(docs)))
}

pub fn kinds(docs: &[Value]) -> Vec<String> {
    docs.iter()
        .map(|d| format!("{}/{}", d["kind"].as_str().unwrap(), name(d)))
        .collect()
}

pub fn name(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap_or_default()
}

/// pacer.yaml from the rendered ConfigMap.
pub fn pacer_yaml(docs: &[Value]) -> String {
    let cm = find(docs, "ConfigMap", FULL);
    cm["data"]["pacer.yaml"].as_str().unwrap().to_owned()
}

/// `pacer check` on a config, which must pass; its output.
pub fn pacer_check(config: &str) -> String {
    let dir = TempDir::new("check");
    let path = dir.path().join("pacer.yaml");
    std::fs::write(&path, config).unwrap();
    let out = run(
        Command::new(env!("CARGO_BIN_EXE_pacer"))
            .args(["check", "--config", path.to_str().unwrap()])
            // What the chart's Secret gives a shared config (ci/three-replicas-values.yaml).
            .env("PACER_SHARED_SECRET", "a-test-secret-of-32-bytes-length")
            .env("RUST_LOG", "warn"),
        HELM_TIMEOUT,
    )
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "pacer check refused the rendered config:\n{}\n{config}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("pacer-helm-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn lint_strict_passes_with_every_values_file_and_for_the_example() {
    let Some(helm) = helm() else { return };
    let chart = chart_dir();
    let chart = chart.to_str().unwrap();
    let mut runs = vec![vec!["lint", "--strict", chart]];
    let files = ci_values();
    for file in &files {
        runs.push([&["lint", "--strict", chart][..], &values_arg(file)].concat());
    }
    // The sidecar example's chart, which includes this one's templates.
    let example = repo("examples/kubernetes/jmeter-with-pacer");
    runs.push(vec!["lint", "--strict", example.to_str().unwrap()]);
    for args in runs {
        let out = helm_run(helm, &args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "helm {args:?}:\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("0 chart(s) failed"), "{stdout}");
    }
}

#[test]
fn the_charts_dashboard_is_the_example_dashboard() {
    // The chart can only read files inside its own directory (.Files.Get), so it carries a copy.
    let copy = std::fs::read(chart_dir().join("dashboards/pacer-dashboard.json")).unwrap();
    let example = std::fs::read(repo("examples/grafana/pacer-dashboard.json")).unwrap();
    assert!(
        copy == example,
        "helm/pacer/dashboards/pacer-dashboard.json differs from \
         examples/grafana/pacer-dashboard.json; copy it over"
    );
}
