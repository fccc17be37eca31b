//! What the chart renders: the shared mode's Deployment, Services and ConfigMap, the CA
//! volume, the monitoring objects, and the image it runs.

use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::*;

/// A values file's setting at `path` (dot-separated), or `default` when it does not set it.
fn setting(file: Option<&Path>, path: &str, default: Value) -> Value {
    let Some(file) = file else { return default };
    let text = std::fs::read_to_string(file).unwrap();
    let values: Value = serde_saphyr::from_str(&text).unwrap();
    let found = path.split('.').try_fold(&values, |v, key| v.get(key));
    found.cloned().unwrap_or(default)
}

/// Every values file of the shared mode: the defaults (None) and the ci files that keep it.
fn shared_cases() -> Vec<Option<PathBuf>> {
    let mut cases = vec![None];
    for file in ci_values() {
        if setting(Some(&file), "mode", json!("shared")) == "shared" {
            cases.push(Some(file));
        }
    }
    assert!(
        cases.len() >= 3,
        "want the defaults and two shared ci files"
    );
    cases
}

fn render_with(helm: &Path, file: Option<&Path>) -> Vec<Value> {
    match file {
        Some(file) => render(helm, &values_arg(file)),
        None => render(helm, &[]),
    }
}

#[test]
fn shared_mode_renders_deployment_services_and_configmap() {
    let Some(helm) = helm() else { return };
    for file in shared_cases() {
        let file = file.as_deref();
        let docs = render_with(helm, file);
        let what = format!("{file:?}: {:?}", kinds(&docs));
        let port = setting(file, "service.port", json!(8080));
        let admin = setting(file, "admin.port", json!(9091));
        let replicas = setting(file, "replicaCount", json!(1));

        let cm = find(&docs, "ConfigMap", FULL);
        let deploy = find(&docs, "Deployment", FULL);
        assert_eq!(deploy["spec"]["replicas"], replicas, "{what}");
        let pod = &deploy["spec"]["template"];
        let spec = &pod["spec"];
        assert_eq!(spec["automountServiceAccountToken"], false, "{what}");
        let containers = spec["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 1, "{what}");
        let c = &containers[0];
        assert_eq!(c["name"], "pacer");
        assert_eq!(
            c["args"],
            json!(["proxy", "--config", "/etc/pacer/pacer.yaml"])
        );

        // Probes on the admin port: liveness /healthz, readiness (and startup) /readyz.
        for (probe, path) in [
            ("livenessProbe", "/healthz"),
            ("readinessProbe", "/readyz"),
            ("startupProbe", "/readyz"),
        ] {
            assert_eq!(c[probe]["httpGet"]["path"], path, "{what}: {probe}");
            assert_eq!(c[probe]["httpGet"]["port"], admin, "{what}: {probe}");
        }

        // Hardened: non-root, read-only root filesystem, no escalation, no capabilities.
        let sc = &c["securityContext"];
        assert_eq!(sc["runAsNonRoot"], true, "{what}");
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{what}");
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{what}");
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{what}");
        assert_ne!(sc["runAsUser"], 0, "{what}");
        let requests = &c["resources"]["requests"];
        assert!(
            requests["cpu"].is_string() && requests["memory"].is_string(),
            "{what}"
        );
        assert!(c["resources"]["limits"]["memory"].is_string(), "{what}");

        // Ports: the container's, the proxy Service's and the admin Service's agree.
        let ports: Vec<(&Value, &Value)> = c["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (&p["name"], &p["containerPort"]))
            .collect();
        assert_eq!(ports, [(&json!("proxy"), &port), (&json!("admin"), &admin)]);
        let svc = find(&docs, "Service", FULL);
        let admin_svc = find(&docs, "Service", "pacer-test-admin");
        let svc_port = &svc["spec"]["ports"].as_array().unwrap()[..];
        assert_eq!(
            svc_port.len(),
            1,
            "{what}: the proxy Service carries only the proxy"
        );
        assert_eq!(svc_port[0]["port"], port, "{what}");
        assert_eq!(svc_port[0]["targetPort"], "proxy", "{what}");
        let admin_port = &admin_svc["spec"]["ports"].as_array().unwrap()[..];
        assert_eq!(admin_port.len(), 1, "{what}");
        assert_eq!(admin_port[0]["port"], admin, "{what}");
        assert_eq!(admin_port[0]["targetPort"], "admin", "{what}");
        assert_eq!(admin_svc["spec"]["type"], "ClusterIP", "{what}");
        for s in [svc, admin_svc] {
            let selector = s["spec"]["selector"].as_object().unwrap();
            for (k, v) in selector {
                assert_eq!(&pod["metadata"]["labels"][k], v, "{what}: {k}");
            }
        }

        // The config is mounted from the ConfigMap, and a change to it restarts the pods.
        let config = cm["data"]["pacer.yaml"].as_str().unwrap();
        // Of pacer.yaml as rendered, before the YAML block scalar adds its final newline.
        let sum = format!(
            "{:x}",
            Sha256::digest(config.trim_end_matches('\n').as_bytes())
        );
        assert_eq!(
            pod["metadata"]["annotations"]["checksum/config"], sum,
            "{what}"
        );
        let volumes = spec["volumes"].as_array().unwrap();
        assert!(
            volumes
                .iter()
                .any(|v| v["configMap"]["name"] == cm["metadata"]["name"]),
            "{what}: {volumes:?}"
        );

        // pacer listens where the Service sends traffic, and the binary accepts the config.
        let parsed: Value = serde_saphyr::from_str(config).unwrap();
        let host = setting(file, "bindAddress", json!("0.0.0.0"));
        let host = host.as_str().unwrap();
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        assert_eq!(parsed["listen"], format!("{host}:{port}"), "{what}");
        assert_eq!(parsed["admin"], format!("{host}:{admin}"), "{what}");
        pacer_check(config);
    }
}

#[test]
fn every_rendered_config_passes_pacer_check() {
    let Some(helm) = helm() else { return };
    let mut files = vec![None];
    files.extend(ci_values().into_iter().map(Some));
    for file in files {
        let docs = render_with(helm, file.as_deref());
        let out = pacer_check(&pacer_yaml(&docs));
        assert!(out.contains("is valid"), "{file:?}: {out}");
    }
}

/// The default `config` sets up what `config/genesys.yaml` does (as `pacer check` describes
/// it), apart from the listeners the chart owns and the order of the limits.
#[test]
fn the_default_config_is_config_genesys_yaml() {
    let Some(helm) = helm() else { return };
    let setup = |text: String| {
        let mut lines: Vec<String> = text
            .lines()
            .skip(1) // "<file> is valid"
            .filter(|l| !l.starts_with("listen:") && !l.starts_with("admin"))
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    };
    let chart = pacer_check(&pacer_yaml(&render(helm, &[])));
    let reference = pacer_check(&std::fs::read_to_string(repo("config/genesys.yaml")).unwrap());
    assert_eq!(setup(chart), setup(reference));
}

#[test]
fn the_ca_comes_from_a_secret_or_is_generated_into_an_emptydir() {
    let Some(helm) = helm() else { return };
    let ca_volume = |docs: &[Value]| {
        let spec = &find(docs, "Deployment", FULL)["spec"]["template"]["spec"];
        let volume = spec["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "pacer-ca")
            .cloned();
        let mount = spec["containers"][0]["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "pacer-ca")
            .cloned();
        let config: Value = serde_saphyr::from_str(&pacer_yaml(docs)).unwrap();
        (volume, mount, config["intercept"].clone())
    };
    let paths =
        json!({"ca_cert": "/var/run/pacer/ca/ca.crt", "ca_key": "/var/run/pacer/ca/ca.key"});

    // Default: pacer writes its CA into an emptyDir at start.
    let (volume, mount, intercept) = ca_volume(&render(helm, &[]));
    assert!(volume.unwrap()["emptyDir"].is_object());
    let mount = mount.unwrap();
    assert_eq!(mount["mountPath"], "/var/run/pacer/ca");
    assert_eq!(mount["readOnly"], false);
    assert_eq!(intercept, paths);

    // From a Secret: its two keys, read-only.
    let set = "ca.existingSecret=my-ca,ca.certKey=cert.pem,ca.keyKey=key.pem";
    let (volume, mount, intercept) = ca_volume(&render(helm, &["--set", set]));
    let secret = &volume.unwrap()["secret"];
    assert_eq!(secret["secretName"], "my-ca");
    assert_eq!(
        secret["items"],
        json!([{"key": "cert.pem", "path": "ca.crt"}, {"key": "key.pem", "path": "ca.key"}])
    );
    assert_eq!(mount.unwrap()["readOnly"], true);
    assert_eq!(intercept, paths);

    // Off: no volume, no intercept section.
    let (volume, mount, intercept) = ca_volume(&render(helm, &["--set", "ca.enabled=false"]));
    assert_eq!((volume, mount, intercept), (None, None, Value::Null));
}

#[test]
fn monitoring_disruption_budget_and_network_policy_render_when_enabled() {
    let Some(helm) = helm() else { return };
    let file = chart_dir().join("ci/shared-values.yaml");
    let docs = render(helm, &values_arg(&file));
    let admin_svc = find(&docs, "Service", "pacer-test-admin");

    // The ServiceMonitor scrapes the admin Service's port.
    let sm = find(&docs, "ServiceMonitor", FULL);
    assert_eq!(sm["metadata"]["labels"]["release"], "kube-prometheus-stack");
    for (k, v) in sm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(
            &admin_svc["metadata"]["labels"][k], v,
            "ServiceMonitor selects {k}"
        );
    }
    let proxy_svc = find(&docs, "Service", FULL);
    assert_ne!(
        proxy_svc["metadata"]["labels"]["app.kubernetes.io/component"],
        sm["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"],
        "the ServiceMonitor must not select the proxy Service"
    );
    let endpoint = &sm["spec"]["endpoints"][0];
    assert_eq!(endpoint["port"], admin_svc["spec"]["ports"][0]["name"]);
    assert_eq!(endpoint["path"], "/metrics");

    // The dashboard, for Grafana's sidecar, in the namespace it watches.
    let dash = find(&docs, "ConfigMap", "pacer-test-dashboard");
    assert_eq!(dash["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(dash["metadata"]["namespace"], "monitoring");
    let json_text = dash["data"]["pacer-dashboard.json"].as_str().unwrap();
    let example = std::fs::read_to_string(repo("examples/grafana/pacer-dashboard.json")).unwrap();
    assert_eq!(json_text.trim_end(), example.trim_end());

    let pdb = find(&docs, "PodDisruptionBudget", FULL);
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    let policy = find(&docs, "NetworkPolicy", FULL);
    let ports: Vec<&Value> = policy["spec"]["ingress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| &rule["ports"][0]["port"])
        .collect();
    assert_eq!(ports, [&json!(3128), &json!(9100)]);

    // None of it by default.
    let defaults = kinds(&render(helm, &[]));
    let mut want = [
        "ConfigMap/pacer-test",
        "Deployment/pacer-test",
        "Service/pacer-test",
        "Service/pacer-test-admin",
        "ServiceAccount/pacer-test",
    ];
    want.sort();
    let mut got = defaults.clone();
    got.sort();
    assert_eq!(got, want);
}

#[test]
fn the_default_image_is_what_the_dockerfile_builds() {
    let Some(helm) = helm() else { return };
    let version = env!("CARGO_PKG_VERSION");
    let chart = std::fs::read_to_string(chart_dir().join("Chart.yaml")).unwrap();
    let chart: Value = serde_saphyr::from_str(&chart).unwrap();
    assert_eq!(
        chart["appVersion"], version,
        "Chart.yaml appVersion is pacer's version"
    );

    let docs = render(helm, &[]);
    let image =
        &find(&docs, "Deployment", FULL)["spec"]["template"]["spec"]["containers"][0]["image"];
    assert_eq!(image, &format!("pacer:{version}"));

    let build = format!("docker build -t pacer:{version} .");
    let dockerfile = std::fs::read_to_string(repo("Dockerfile")).unwrap();
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    assert!(
        dockerfile.contains(&build),
        "the Dockerfile documents `{build}`"
    );
    assert!(readme.contains(&build), "the README documents `{build}`");
    // The user the chart's securityContext runs as.
    assert!(dockerfile.contains("USER 65532:65532"));
    let final_stage = dockerfile.rsplit("\nFROM ").next().unwrap();
    assert!(
        final_stage.starts_with("gcr.io/distroless/cc-debian12:nonroot"),
        "{final_stage}"
    );
}
