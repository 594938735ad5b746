use super::*;

fn manifests_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn args(dir: &Path) -> RunArgs {
    RunArgs {
        manifests: Some(dir.to_path_buf()),
        node_name: Some("node-a".into()),
        node_ip: Some("10.0.0.1".into()),
        no_lb: true,
        ..RunArgs::default()
    }
}

#[test]
fn defaults_apply() {
    let dir = manifests_dir();
    let config = Config::merge(&args(dir.path()), FileConfig::default()).unwrap();
    assert_eq!(config.admin_listen.to_string(), DEFAULT_ADMIN_LISTEN);
    assert_eq!(config.cluster_domain, "cluster.local");
    assert!(config.lb.is_none());
    assert_eq!(config.dns.unwrap().listen, vec![]);
    assert!(config.ingress.is_some());
}

#[test]
fn flags_override_the_file() {
    let dir = manifests_dir();
    let file: FileConfig = serde_yaml_ng::from_str(
        "adminListen: 127.0.0.1:9000\nclusterDomain: example.org\ndns: {listen: ['127.0.0.1:53']}\n",
    )
    .unwrap();
    let mut args = args(dir.path());
    args.admin_listen = Some("127.0.0.1:9001".into());
    args.dns_listen = vec!["127.0.0.1:5353".into(), "[::1]:5353".into()];
    let config = Config::merge(&args, file).unwrap();
    assert_eq!(config.admin_listen.to_string(), "127.0.0.1:9001");
    assert_eq!(config.cluster_domain, "example.org");
    let listen: Vec<String> = config
        .dns
        .unwrap()
        .listen
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(listen, ["127.0.0.1:5353", "[::1]:5353"]);
}

#[test]
fn the_file_can_switch_subsystems_off_and_flags_can_too() {
    let dir = manifests_dir();
    let file: FileConfig =
        serde_yaml_ng::from_str("dns: {enabled: false}\ningress: {enabled: true}\n").unwrap();
    let mut args = args(dir.path());
    args.no_ingress = true;
    let config = Config::merge(&args, file).unwrap();
    assert!(config.dns.is_none());
    assert!(config.ingress.is_none());
}

#[test]
fn unknown_fields_are_rejected() {
    let error = serde_yaml_ng::from_str::<FileConfig>("adminListen: x\nbogus: 1\n").unwrap_err();
    assert!(
        error.to_string().contains("unknown field `bogus`"),
        "{error}"
    );
    let error = serde_yaml_ng::from_str::<FileConfig>("dns: {listn: []}\n").unwrap_err();
    assert!(
        error.to_string().contains("unknown field `listn`"),
        "{error}"
    );
}

#[test]
fn bad_values_name_the_setting() {
    let dir = manifests_dir();
    type Mutation = fn(&mut RunArgs);
    let cases: [(Mutation, &str); 7] = [
        (
            |a| {
                a.no_lb = false;
                a.lb_cgroup = Some("/proc".into());
            },
            "--lb-cgroup",
        ),
        (
            |a| a.admin_listen = Some("localhost".into()),
            "--admin-listen",
        ),
        (|a| a.node_ip = Some("10.0.0".into()), "--node-ip"),
        (
            |a| a.cluster_domain = Some("bad domain".into()),
            "--cluster-domain",
        ),
        (
            |a| a.dns_listen = vec!["127.0.0.1:10256".into()],
            "already used by --admin-listen",
        ),
        (
            |a| a.manifests = Some("/nonexistent/ferry".into()),
            "--manifests",
        ),
        (
            |a| a.kubeconfig = Some("/root/.kube/config".into()),
            "--manifests / --kubeconfig",
        ),
    ];
    for (mutate, expected) in cases {
        let mut args = args(dir.path());
        mutate(&mut args);
        let error = Config::merge(&args, FileConfig::default())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(expected),
            "{error:?} should mention {expected:?}"
        );
    }
}

#[test]
fn every_shipped_example_config_parses() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/config");
    let mut seen = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        read_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        seen += 1;
    }
    assert!(seen > 0, "no example configs in {}", examples.display());
}
