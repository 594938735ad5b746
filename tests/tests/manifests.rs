//! `ferry run --manifests`: startup at scale, live edits, and bad input that loses nothing.

use ferry_tests::{Ferry, write_atomic, write_services};
use serde_json::Value;
use std::time::Duration;

const OFF: [&str; 3] = ["--no-lb", "--no-dns", "--no-ingress"];

fn service<'a>(state: &'a Value, name: &str) -> Option<&'a Value> {
    state["services"]
        .as_array()?
        .iter()
        .find(|s| s["service"]["key"]["name"] == name)
}

fn start(dir: &std::path::Path) -> Ferry {
    let dir = dir.to_str().unwrap();
    let mut args = vec!["--manifests", dir];
    args.extend(OFF);
    Ferry::start(&args).unwrap()
}

#[test]
fn a_thousand_services_with_ten_endpoints_each_are_served() {
    let dir = tempfile::tempdir().unwrap();
    write_services(dir.path(), 1000, 10, 20).unwrap();
    let mut ferry = start(dir.path());
    let ready = ferry.wait_ready(Duration::from_secs(30)).unwrap();
    eprintln!("ready after {ready:?} with 1000 services x 10 endpoints");

    let state = ferry.state().unwrap();
    let services = state["services"].as_array().unwrap();
    assert_eq!(services.len(), 1000);
    assert!(
        services
            .iter()
            .all(|s| s["endpoints"].as_array().unwrap().len() == 10)
    );
    let svc = service(&state, "svc-999").unwrap();
    assert_eq!(svc["service"]["cluster_ips"][0], "10.96.3.231");
    assert_eq!(
        ferry.metric("ferry_objects{kind=\"Service\"}").unwrap(),
        1000.0
    );
    assert_eq!(ferry.metric("ferry_endpoints").unwrap(), 10000.0);
}

#[test]
fn an_edited_file_shows_in_the_state_and_a_removed_one_disappears() {
    let dir = tempfile::tempdir().unwrap();
    write_services(dir.path(), 50, 2, 5).unwrap();
    let mut ferry = start(dir.path());
    ferry.wait_ready(Duration::from_secs(30)).unwrap();

    let text = std::fs::read_to_string(dir.path().join("services-0.yaml")).unwrap();
    let edited = text.replace("clusterIP: 10.96.0.0\n", "clusterIP: 10.96.200.1\n");
    assert_ne!(text, edited);
    write_atomic(dir.path(), "services-0.yaml", &edited).unwrap();
    let took = ferry
        .wait_for_state(Duration::from_secs(5), |s| {
            service(s, "svc-0").is_some_and(|v| v["service"]["cluster_ips"][0] == "10.96.200.1")
        })
        .unwrap();
    eprintln!("edit visible after {took:?}");

    // In-place write (no rename), as `echo >>` does.
    std::fs::write(dir.path().join("services-1.yaml"), "").unwrap();
    ferry
        .wait_for_state(Duration::from_secs(5), |s| {
            service(s, "svc-1").is_none() && service(s, "svc-2").is_some()
        })
        .unwrap();

    std::fs::remove_file(dir.path().join("services-2.yaml")).unwrap();
    ferry
        .wait_for_state(Duration::from_secs(5), |s| {
            s["services"].as_array().unwrap().len() == 30
        })
        .unwrap();
}

#[test]
fn a_malformed_file_is_named_counted_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write_services(dir.path(), 20, 2, 2).unwrap();
    let mut ferry = start(dir.path());
    ferry.wait_ready(Duration::from_secs(30)).unwrap();
    let before = ferry.state().unwrap();
    assert_eq!(
        ferry.metric("ferry_k8s_invalid_objects_total").unwrap(),
        0.0
    );

    // A new file that does not parse, and an existing file broken by an edit.
    write_atomic(dir.path(), "broken.yaml", "apiVersion: v1\nkind: [oops\n").unwrap();
    write_atomic(
        dir.path(),
        "services-1.yaml",
        "kind: Service\n  metadata: {\n",
    )
    .unwrap();
    let started = std::time::Instant::now();
    while ferry.metric("ferry_k8s_invalid_objects_total").unwrap() < 2.0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "log:\n{}",
            ferry.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let log = ferry.log();
    assert!(
        log.contains("broken.yaml"),
        "log does not name the file:\n{log}"
    );
    assert!(
        log.contains("services-1.yaml"),
        "log does not name the file:\n{log}"
    );
    assert!(log.contains("keeping its"), "{log}");
    // Everything, including the broken file's last good objects, is still served.
    assert_eq!(ferry.state().unwrap(), before);
    assert!(matches!(ferry.get("/readyz").unwrap(), (200, _)));

    // An invalid object in a valid file: named, counted, the rest of the file applies.
    write_atomic(
        dir.path(),
        "extra.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: ok-svc, namespace: bench}\nspec: {clusterIP: 10.97.0.1}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: bad-svc, namespace: bench}\nspec: {clusterIP: 10.97.0.999}\n",
    )
    .unwrap();
    ferry
        .wait_for_state(Duration::from_secs(5), |s| service(s, "ok-svc").is_some())
        .unwrap();
    assert!(ferry.metric("ferry_k8s_invalid_objects_total").unwrap() >= 3.0);
    let log = ferry.log();
    assert!(
        log.contains("extra.yaml: document 2: Service bench/bad-svc"),
        "log does not name the object:\n{log}"
    );
}

#[test]
fn admin_endpoints_answer() {
    let dir = tempfile::tempdir().unwrap();
    write_services(dir.path(), 3, 1, 1).unwrap();
    let mut ferry = start(dir.path());
    ferry.wait_ready(Duration::from_secs(30)).unwrap();
    assert_eq!(ferry.get("/healthz").unwrap(), (200, "ok\n".into()));
    assert_eq!(ferry.get("/readyz").unwrap(), (200, "ready\n".into()));
    assert_eq!(ferry.get("/nope").unwrap().0, 404);
    let (status, metrics) = ferry.get("/metrics").unwrap();
    assert_eq!(status, 200);
    for name in [
        "ferry_objects{kind=\"Service\"} 3",
        "ferry_k8s_invalid_objects_total 0",
        "ferry_k8s_sync_duration_seconds_count",
        "ferry_apply_duration_seconds_count",
    ] {
        assert!(metrics.contains(name), "{name} missing from:\n{metrics}");
    }
}
