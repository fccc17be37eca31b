//! Values: what the schema and the templates refuse, and what a config change does to the pods.

use super::*;

/// Renders with `--set`-style arguments and returns helm's error, which must come.
fn refused(helm: &Path, args: &[&str]) -> String {
    let chart = chart_dir();
    let out = helm_run(
        helm,
        &[&["template", RELEASE, chart.to_str().unwrap()], args].concat(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "helm accepted {args:?}:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

#[test]
fn bad_values_are_refused_with_a_message_naming_the_value() {
    let Some(helm) = helm() else { return };
    let cases: &[(&[&str], &[&str])] = &[
        // The schema: types, ranges, enums, unknown keys.
        (
            &["--set-string", "service.port=http"],
            &["service.port", "Expected: integer, given: string"],
        ),
        (&["--set", "admin.port=70000"], &["admin.port", "65535"]),
        (&["--set", "mode=daemonset"], &["mode", "shared", "sidecar"]),
        (&["--set", "replicaCount=-1"], &["replicaCount"]),
        (
            &["--set", "log.format=xml"],
            &["log.format", "json", "text"],
        ),
        (
            &["--set", "config.limits.per-token.mode=bogus"],
            &["config.limits.per-token.mode", "queue", "reject", "observe"],
        ),
        (
            &["--set", "config.limits.per-token.rate=5/d"],
            &["config.limits.per-token.rate"],
        ),
        (
            &["--set", "config.upstreams.genesys.hostz=x"],
            &["config.upstreams.genesys", "hostz"],
        ),
        (&["--set", "colour=blue"], &["colour"]),
        // The templates: what the chart owns, and ports that would collide.
        (
            &["--set", "config.listen=0.0.0.0:1"],
            &["config.listen is set by the chart", "service.port"],
        ),
        (
            &[
                "--set",
                "config.intercept.ca_cert=x,config.intercept.ca_key=y",
            ],
            &["config.intercept is set by the chart"],
        ),
        (
            &["--set", "admin.port=8080"],
            &["service.port and admin.port are both 8080"],
        ),
        (
            &["--set", "mode=sidecar,podMonitor.enabled=true"],
            &["podMonitor.podSelector"],
        ),
    ];
    for (args, wants) in cases {
        let err = refused(helm, args);
        for want in *wants {
            assert!(err.contains(want), "{args:?}: {want:?} not in:\n{err}");
        }
    }
}

#[test]
fn a_config_change_changes_the_pod_checksum_and_nothing_else_does() {
    let Some(helm) = helm() else { return };
    let checksum = |args: &[&str]| {
        let docs = render(helm, args);
        let pod = &find(&docs, "Deployment", FULL)["spec"]["template"];
        pod["metadata"]["annotations"]["checksum/config"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let base = checksum(&[]);
    assert_eq!(base.len(), 64, "a sha256: {base}");
    for changed in [
        "config.retry.max_attempts=3",
        "config.limits.scripts.rate=10/s",
        "service.port=3128",
        "ca.enabled=false",
    ] {
        assert_ne!(checksum(&["--set", changed]), base, "{changed}");
    }
    // Settings that do not reach pacer.yaml leave running pods alone.
    for unrelated in ["replicaCount=1", "resources.requests.cpu=200m"] {
        assert_eq!(checksum(&["--set", unrelated]), base, "{unrelated}");
    }
}

#[test]
fn a_maps_default_entries_can_be_dropped_with_null() {
    let Some(helm) = helm() else { return };
    // Helm merges maps into the defaults: ci/mock-values.yaml replaces the genesys upstream.
    let file = chart_dir().join("ci/mock-values.yaml");
    let config: Value = serde_saphyr::from_str(&pacer_yaml(&render(helm, &values_arg(&file))))
        .expect("pacer.yaml parses");
    let upstreams: Vec<&String> = config["upstreams"].as_object().unwrap().keys().collect();
    assert_eq!(upstreams, ["mock"]);
    assert!(
        config.get("intercept").is_none(),
        "ca.enabled is false there"
    );
}
