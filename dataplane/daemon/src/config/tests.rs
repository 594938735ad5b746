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
    let cases: [(Mutation, &str); 9] = [
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
            |a| a.node_ip = Some("10.0.0.1,10.0.0.2".into()),
            "--node-ip",
        ),
        (|a| a.node_ip = Some("0.0.0.0".into()), "--node-ip"),
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
fn dns_settings_default_and_flags_override_the_file() {
    let dir = manifests_dir();
    let dns = Config::merge(&args(dir.path()), FileConfig::default())
        .unwrap()
        .dns
        .unwrap();
    assert_eq!(dns.ttl, 30);
    assert_eq!(dns.pods, ferry_dns::PodMode::Insecure);
    assert!(!dns.endpoint_pod_names, "off by default, as in CoreDNS");
    assert!(dns.upstreams.is_empty(), "empty: /etc/resolv.conf");
    assert_eq!(dns.allow, ferry_dns::default_allow());

    let file: FileConfig = serde_yaml_ng::from_str(
        "dns: {ttl: 5, pods: disabled, endpointPodNames: true, upstreams: ['10.0.0.2', '[fd00::53]:5353'], allow: [10.0.0.0/8]}\n",
    )
    .unwrap();
    let dns = Config::merge(&args(dir.path()), file).unwrap().dns.unwrap();
    assert_eq!(dns.ttl, 5);
    assert!(dns.endpoint_pod_names);
    assert_eq!(dns.pods, ferry_dns::PodMode::Disabled);
    let upstreams: Vec<String> = dns.upstreams.iter().map(ToString::to_string).collect();
    assert_eq!(upstreams, ["10.0.0.2:53", "[fd00::53]:5353"]);
    assert_eq!(dns.allow, ["10.0.0.0/8".parse().unwrap()]);

    let file: FileConfig = serde_yaml_ng::from_str("dns: {ttl: 5, pods: disabled}\n").unwrap();
    let mut args = args(dir.path());
    args.dns_ttl = Some("0".into());
    args.dns_pods = Some("insecure".into());
    args.dns_endpoint_pod_names = true;
    args.dns_upstreams = vec!["127.0.0.1:5300".into()];
    args.dns_allow = vec!["192.0.2.7".into(), "2001:db8::/32".into()];
    let dns = Config::merge(&args, file).unwrap().dns.unwrap();
    assert_eq!(dns.ttl, 0);
    assert_eq!(dns.pods, ferry_dns::PodMode::Insecure);
    assert!(dns.endpoint_pod_names);
    assert_eq!(dns.upstreams, ["127.0.0.1:5300".parse().unwrap()]);
    let allow: Vec<String> = dns.allow.iter().map(ToString::to_string).collect();
    assert_eq!(allow, ["192.0.2.7/32", "2001:db8::/32"]);
}

#[test]
fn bad_dns_values_name_the_setting() {
    let dir = manifests_dir();
    type Mutation = fn(&mut RunArgs);
    let cases: [(Mutation, &str); 7] = [
        (|a| a.dns_ttl = Some("soon".into()), "--dns-ttl"),
        (|a| a.dns_ttl = Some("3601".into()), "--dns-ttl"),
        (|a| a.dns_pods = Some("verified".into()), "--dns-pods"),
        (
            |a| a.dns_upstreams = vec!["dns.example".into()],
            "--dns-upstream",
        ),
        (|a| a.dns_allow = vec!["10.0.0.0/33".into()], "--dns-allow"),
        (|a| a.dns_allow = vec!["private".into()], "--dns-allow"),
        (
            |a| {
                a.dns_listen = vec!["127.0.0.1:5353".into()];
                a.dns_upstreams = vec!["127.0.0.1:5353".into()];
            },
            "would loop",
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
    let error = serde_yaml_ng::from_str::<FileConfig>("dns: {ttl: -1}\n").unwrap_err();
    assert!(error.to_string().contains("ttl"), "{error}");
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

#[test]
fn the_dns_service_defaults_to_kube_dns_and_can_be_switched_off() {
    let dir = manifests_dir();
    let config = Config::merge(&args(dir.path()), FileConfig::default()).unwrap();
    assert_eq!(
        config.dns_service,
        Some(ObjectKey::new("kube-system", "kube-dns"))
    );
    let file: FileConfig = serde_yaml_ng::from_str("dns: {service: dns/coredns}\n").unwrap();
    let config = Config::merge(&args(dir.path()), file).unwrap();
    assert_eq!(config.dns_service, Some(ObjectKey::new("dns", "coredns")));
    let mut none = args(dir.path());
    none.dns_service = Some("none".into());
    assert_eq!(
        Config::merge(&none, FileConfig::default())
            .unwrap()
            .dns_service,
        None
    );
    for bad in ["kube-dns", "a/b/c", "Kube-System/kube-dns", "/kube-dns"] {
        let mut wrong = args(dir.path());
        wrong.dns_service = Some(bad.into());
        let error = Config::merge(&wrong, FileConfig::default())
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("--dns-service:"), "{bad}: {error}");
    }
}

#[test]
fn node_ip_takes_a_dual_stack_pair_in_either_order() {
    let dir = manifests_dir();
    let mut dual = args(dir.path());
    dual.node_ip = Some("fd00::1, 10.0.0.1".into());
    let config = Config::merge(&dual, FileConfig::default()).unwrap();
    let expected: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "fd00::1".parse().unwrap()];
    assert_eq!(config.node_ips, expected);
    dual.node_ip = Some("fd00::1".into());
    let config = Config::merge(&dual, FileConfig::default()).unwrap();
    assert_eq!(config.node_ips, expected[1..]);
}

#[test]
fn node_local_dns_needs_both_engines_and_reaches_a_wildcard_at_the_node_ip() {
    let dir = manifests_dir();
    let mut both = args(dir.path());
    both.no_lb = false;
    both.dns_listen = vec![
        "0.0.0.0:53".into(),
        "[::]:53".into(),
        "169.254.20.10:53".into(),
    ];
    let config = Config::merge(&both, FileConfig::default()).unwrap();
    let local = config.local_dns().unwrap();
    assert_eq!(local.service, ObjectKey::new("kube-system", "kube-dns"));
    assert_eq!(
        local.listen,
        [
            "10.0.0.1:53".parse::<SocketAddr>().unwrap(),
            "169.254.20.10:53".parse().unwrap()
        ],
        "no IPv6 node IP: [::] is not reachable at one"
    );
    let mut no_lb = both.clone();
    no_lb.no_lb = true;
    assert_eq!(
        Config::merge(&no_lb, FileConfig::default())
            .unwrap()
            .local_dns(),
        None
    );
    let mut no_listener = both.clone();
    no_listener.dns_listen.clear();
    let config = Config::merge(&no_listener, FileConfig::default()).unwrap();
    assert_eq!(config.local_dns(), None);
}

#[test]
fn snat_ports_are_a_range_clear_of_the_ephemeral_ports() {
    let ephemeral = Some(32_768..=60_999);
    assert_eq!(
        snat_range("61000-65535", &ephemeral).unwrap(),
        61_000..=65_535
    );
    assert_eq!(
        snat_range(" 20000 - 20999", &ephemeral).unwrap(),
        20_000..=20_999
    );
    assert_eq!(snat_range("40000-40010", &None).unwrap(), 40_000..=40_010);
    for (bad, reason) in [
        ("61000", "is not FIRST-LAST"),
        ("61000-70000", "is not FIRST-LAST"),
        ("80-90", "1024 <= FIRST"),
        ("62000-61000", "1024 <= FIRST"),
        (
            "60000-61000",
            "overlaps net.ipv4.ip_local_port_range 32768-60999",
        ),
    ] {
        let error = snat_range(bad, &ephemeral).unwrap_err().to_string();
        assert!(
            error.starts_with("--lb-snat-ports:") && error.contains(reason),
            "{bad}: {error}"
        );
    }
}
