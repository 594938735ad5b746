//! The `ferry` command line: `check`, configuration errors, signals.

use ferry_tests::{Ferry, ferry_binary, free_port};
use nix::sys::signal::Signal;
use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

fn ferry(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(ferry_binary()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn check_reports_every_mistake_with_file_and_object() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("services.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: Bad_Name}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: ip, namespace: shop}\nspec: {clusterIP: 300.1.1.1}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: ports}\nspec: {ports: [{name: a, port: 80}, {name: a, port: 81}]}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: good}\nspec: {clusterIP: 10.96.0.1}\n",
    )
    .unwrap();
    std::fs::write(
        d.join("dupe.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: good}\nspec: {clusterIP: 10.96.0.2}\n",
    )
    .unwrap();
    std::fs::write(
        d.join("slices.json"),
        r#"{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"s","labels":{"kubernetes.io/service-name":"good"}},"addressType":"IPv4","endpoints":[{"addresses":["10.0.0.1.5"]}]}"#,
    )
    .unwrap();
    std::fs::write(
        d.join("ingress.yaml"),
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web}\nspec:\n  rules:\n  - http:\n      paths: [{path: /, pathType: Fuzzy, backend: {service: {name: web, port: {number: 80}}}}]\n",
    )
    .unwrap();
    std::fs::write(d.join("broken.yml"), "a: [b\n").unwrap();
    std::fs::write(
        d.join("secret.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata: {name: tls}\ntype: kubernetes.io/tls\nstringData: {tls.crt: x}\n",
    )
    .unwrap();

    let (code, stdout, _) = ferry(&["check", "--manifests", d.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}");
    for expected in [
        "services.yaml: document 1: Service default/Bad_Name: metadata.name",
        "services.yaml: document 2: Service shop/ip: spec.clusterIPs \"300.1.1.1\" is not an IP address",
        "services.yaml: document 3: Service default/ports: spec.ports[a]: duplicate port name",
        "services.yaml: Service default/good: duplicate object: already defined in",
        "slices.json: document 1: EndpointSlice default/s: endpoints[0]: address \"10.0.0.1.5\" is not an IP address",
        "ingress.yaml: document 1: Ingress default/web: spec.rules[0].http.paths[0].pathType \"Fuzzy\"",
        "broken.yml: invalid YAML",
        "secret.yaml: document 1: Secret default/tls: a kubernetes.io/tls Secret needs both tls.crt and tls.key",
        "1 objects, 8 errors, 0 warnings",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }

    let clean = tempfile::tempdir().unwrap();
    std::fs::write(
        clean.path().join("ok.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: good}\nspec: {clusterIP: 10.96.0.1}\n---\n\
         apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\n",
    )
    .unwrap();
    let (code, stdout, _) = ferry(&["check", "--manifests", clean.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("warning: "), "{stdout}");
    assert!(
        stdout.contains("1 objects, 0 errors, 1 warnings"),
        "{stdout}"
    );
}

#[test]
fn invalid_configuration_exits_64_with_one_message_and_binds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().to_str().unwrap();
    let port = free_port();
    let admin = format!("127.0.0.1:{port}");
    let config = dir.path().join("ferry.yaml");
    std::fs::write(&config, "manifests: /tmp\nadminListn: 127.0.0.1:1\n").unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "--manifests",
                manifests,
                "--admin-listen",
                &admin,
                "--dns-listen",
                "nonsense",
            ],
            "--dns-listen",
        ),
        (
            &[
                "--manifests",
                manifests,
                "--admin-listen",
                &admin,
                "--node-ip",
                "1.2.3",
            ],
            "--node-ip",
        ),
        (&["--admin-listen", &admin], "a source is required"),
        (
            &[
                "--config",
                config.to_str().unwrap(),
                "--admin-listen",
                &admin,
            ],
            "unknown field `adminListn`",
        ),
        (&["--manifests", manifests, "--bogus-flag"], "--bogus-flag"),
    ];
    for (args, expected) in cases {
        let mut full = vec!["run"];
        full.extend_from_slice(args);
        let (code, _, stderr) = ferry(&full);
        assert_eq!(code, 64, "{args:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: {stderr:?} lacks {expected:?}"
        );
        assert!(
            TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "{args:?}: the admin port was left bound"
        );
    }
    let (code, _, stderr) = ferry(&[
        "run",
        "--manifests",
        manifests,
        "--dns-listen",
        "x",
        "--no-lb",
    ]);
    assert_eq!((code, stderr.lines().count()), (64, 1), "{stderr}");
}

#[test]
fn sigterm_and_sigint_shut_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        let mut ferry = Ferry::start(&[
            "--manifests",
            dir.path().to_str().unwrap(),
            "--no-lb",
            "--no-dns",
            "--no-ingress",
        ])
        .unwrap();
        ferry.wait_ready(Duration::from_secs(30)).unwrap();
        ferry.signal(signal).unwrap();
        let status = ferry.wait_exit(Duration::from_secs(5)).unwrap();
        assert!(
            status.success(),
            "{signal}: {status}; log:\n{}",
            ferry.log()
        );
        assert!(ferry.log().contains("ferry stopped"), "{}", ferry.log());
        assert!(
            TcpListener::bind(ferry.admin).is_ok(),
            "admin port still bound"
        );
    }
}
