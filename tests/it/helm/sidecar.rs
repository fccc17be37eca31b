//! The sidecar mode, the JMeter example that uses it, and the NOTES shown after an install.

use std::process::Command;

use serde_json::json;

use super::*;

/// Where the rendered example lives, and the chart it is rendered from.
const EXAMPLE: &str = "examples/kubernetes/jmeter-with-pacer.yaml";
const EXAMPLE_CHART: &str = "examples/kubernetes/jmeter-with-pacer";
const EXAMPLE_RELEASE: &str = "loadtest";

/// The comment the committed rendering starts with; the rest is `helm template` output.
const EXAMPLE_HEADER: &str = "\
# A JMeter Job with pacer beside it as a native sidecar (Kubernetes 1.29+), rendered from the
# chart in examples/kubernetes/jmeter-with-pacer, which includes helm/pacer's sidecar templates.
#
#   kubectl create configmap jmeter-plan --from-file=plan.jmx=path/to/plan.jmx
#   kubectl apply -f examples/kubernetes/jmeter-with-pacer.yaml
#
# It runs the image `docker build -t pacer:0.1.0 .` makes; push it where the cluster pulls from
# and change the image below to match. Edit the chart, not this file, then regenerate:
#
#   PACER_HELM_BLESS=1 cargo test --test it helm::sidecar::the_jmeter_example
";

#[test]
fn sidecar_mode_renders_the_config_and_monitoring_but_no_deployment() {
    let Some(helm) = helm() else { return };
    let file = chart_dir().join("ci/sidecar-values.yaml");
    let docs = render(helm, &values_arg(&file));
    let mut got = kinds(&docs);
    got.sort();
    assert_eq!(
        got,
        [
            "ConfigMap/pacer-test",
            "ConfigMap/pacer-test-dashboard",
            "PodMonitor/pacer-test"
        ]
    );
    let config: Value = serde_saphyr::from_str(&pacer_yaml(&docs)).unwrap();
    // Only the load tool in the same pod reaches the proxy; the kubelet reaches the probes.
    assert_eq!(config["listen"], "127.0.0.1:8080");
    assert_eq!(config["admin"], "0.0.0.0:9091");
    let pm = find(&docs, "PodMonitor", FULL);
    assert_eq!(pm["spec"]["podMetricsEndpoints"][0]["port"], "pacer-admin");
    assert_eq!(
        pm["spec"]["selector"]["matchLabels"],
        json!({"app.kubernetes.io/name": "jmeter"})
    );
}

/// Renders the example chart as the committed file has it.
fn render_example(helm: &Path) -> String {
    let text = render_text(helm, EXAMPLE_RELEASE, &repo(EXAMPLE_CHART), &[]);
    format!("{EXAMPLE_HEADER}{text}")
}

#[test]
fn the_jmeter_example_is_current_and_has_both_containers() {
    let Some(helm) = helm() else { return };
    let rendered = render_example(helm);
    let path = repo(EXAMPLE);
    if std::env::var("PACER_HELM_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &rendered).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == rendered,
        "{EXAMPLE} is not what its chart renders; regenerate it with \
         PACER_HELM_BLESS=1 cargo test --test it helm::sidecar::the_jmeter_example"
    );

    let docs = parse_docs(&committed);
    let job = find(&docs, "Job", "loadtest-jmeter");
    let spec = &job["spec"]["template"]["spec"];
    let pacer = &spec["initContainers"][0];
    let jmeter = &spec["containers"][0];
    assert_eq!(spec["initContainers"].as_array().unwrap().len(), 1);
    assert_eq!(spec["containers"].as_array().unwrap().len(), 1);
    assert_eq!(pacer["name"], "pacer");
    assert_eq!(jmeter["name"], "jmeter");
    // A native sidecar: ready before JMeter starts, stopped when it ends so the Job completes.
    assert_eq!(pacer["restartPolicy"], "Always");
    assert_eq!(pacer["startupProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(pacer["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(pacer["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(spec["restartPolicy"], "Never");
    let script = jmeter["args"][0].as_str().unwrap();
    assert!(script.contains("-H 127.0.0.1 -P 8080"), "{script}");

    // The sidecar's volumes are in the pod, and its ConfigMap is in the file and valid.
    let volumes = spec["volumes"].as_array().unwrap();
    let config_volume = volumes
        .iter()
        .find(|v| v["name"] == "pacer-config")
        .unwrap();
    let cm = find(&docs, "ConfigMap", "loadtest-pacer");
    assert_eq!(config_volume["configMap"]["name"], cm["metadata"]["name"]);
    assert!(volumes.iter().any(|v| v["name"] == "pacer-ca"));
    let config = cm["data"]["pacer.yaml"].as_str().unwrap();
    let parsed: Value = serde_saphyr::from_str(config).unwrap();
    assert_eq!(parsed["listen"], "127.0.0.1:8080");
    pacer_check(config);
    // No Deployment or Service: the sidecar is the whole of pacer here.
    assert!(docs
        .iter()
        .all(|d| d["kind"] != "Deployment" && d["kind"] != "Service"));
}

/// NOTES.txt, rendered: helm template does not render it, so a copy of the chart gets a
/// template that renders it into a ConfigMap.
pub fn notes(helm: &Path, args: &[&str]) -> String {
    let dir = TempDir::new("notes");
    let chart = dir.path().join("pacer");
    let status = Command::new("cp")
        .args(["-R", chart_dir().to_str().unwrap(), chart.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::create_dir_all(chart.join("notes")).unwrap();
    std::fs::rename(
        chart.join("templates/NOTES.txt"),
        chart.join("notes/NOTES.txt"),
    )
    .unwrap();
    std::fs::write(
        chart.join("templates/notes.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n\
         data: {notes: {{ tpl (.Files.Get \"notes/NOTES.txt\") . | quote }}}\n",
    )
    .unwrap();
    let docs = render_chart(helm, &chart, args);
    let cm = docs.iter().find(|d| name(d) == "notes").unwrap();
    cm["data"]["notes"].as_str().unwrap().to_owned()
}

#[test]
fn notes_say_how_to_point_jmeter_at_pacer_and_where_the_metrics_are() {
    let Some(helm) = helm() else { return };
    let shared = notes(helm, &[]);
    for want in [
        "jmeter -n -t plan.jmx -H pacer-test.default.svc -P 8080",
        "svc/pacer-test-admin 9091",
        "/metrics",
    ] {
        assert!(shared.contains(want), "{want:?} not in:\n{shared}");
    }
    assert!(!shared.contains("WARNING"), "{shared}");

    let two = notes(helm, &["--set", "replicaCount=2"]);
    assert!(two.contains("WARNING: 2 replicas each enforce"), "{two}");

    let sidecar = notes(helm, &["--set", "mode=sidecar"]);
    for want in [
        "include \"pacer.sidecarContainer\"",
        "-H 127.0.0.1 -P 8080",
        "(named pacer-admin) at /metrics",
    ] {
        assert!(sidecar.contains(want), "{want:?} not in:\n{sidecar}");
    }
}
