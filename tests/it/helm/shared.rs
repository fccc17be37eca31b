//! Limits shared through Redis: the `shared:` section and secrets the chart writes, and the
//! replica warning that every shared limit lifts.

use serde_json::Value;

use super::sidecar::notes;
use super::*;

const THREE: &str = "three-replicas-values.yaml";

fn three_args() -> [String; 2] {
    let file = chart_dir().join("ci").join(THREE);
    ["-f".to_owned(), file.to_str().unwrap().to_owned()]
}

#[test]
fn three_replicas_share_their_limits_through_redis() {
    let Some(helm) = helm() else { return };
    let args = three_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let docs = render(helm, &args);
    let config: Value = serde_saphyr::from_str(&pacer_yaml(&docs)).unwrap();
    let shared = &config["shared"];
    assert_eq!(shared["instances"], 3, "{config}");
    assert_eq!(shared["key_secret_env"], "PACER_SHARED_SECRET");
    assert_eq!(shared["redis"], "redis://redis-master.loadtest.svc:6379/0");
    for limit in config["limits"].as_object().unwrap().values() {
        assert_eq!(limit["shared"], true, "{config}");
    }
    // The secrets come from Secrets as environment variables, never through the ConfigMap.
    let deploy = find(&docs, "Deployment", FULL);
    let env = &deploy["spec"]["template"]["spec"]["containers"][0]["env"];
    let from = |name: &str| {
        env.as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .map(|e| e["valueFrom"]["secretKeyRef"]["name"].clone())
    };
    assert_eq!(from("PACER_SHARED_SECRET"), Some("pacer-shared".into()));
    assert_eq!(from("PACER_REDIS_PASSWORD"), Some("redis-auth".into()));

    let all_shared = notes(helm, &args);
    assert!(!all_shared.contains("WARNING"), "{all_shared}");
    let mut one_local = args.clone();
    one_local.extend(["--set", "config.limits.scripts.shared=false"]);
    let warned = notes(helm, &one_local);
    assert!(
        warned.contains("WARNING: 3 replicas each enforce the limits scripts on their own"),
        "{warned}"
    );
}

#[test]
fn a_redis_url_needs_the_key_secret() {
    let Some(helm) = helm() else { return };
    let chart = chart_dir();
    let out = helm_run(
        helm,
        &[
            "template",
            "t",
            chart.to_str().unwrap(),
            "--set",
            "shared.redis.url=redis://r:6379/0",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("shared.keySecret.existingSecret is required"),
        "{err}"
    );
}
