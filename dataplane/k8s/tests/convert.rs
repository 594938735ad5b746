//! Conversion of single objects: every field the engines need, and the reasons for rejection.

use ferry_k8s::convert::{Converted, from_value};
use ferry_model::*;
use serde_json::{Value, json};
use std::net::IpAddr;
use std::time::Duration;

fn object(value: Value) -> Object {
    match from_value(value) {
        Ok(Converted::Object(object)) => object,
        other => panic!("expected an object, got {other:?}"),
    }
}

fn service(spec: Value) -> Service {
    let value = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "svc", "namespace": "ns"}, "spec": spec});
    match object(value) {
        Object::Service(s) => (*s).clone(),
        other => panic!("{other:?}"),
    }
}

fn rejection(value: Value) -> String {
    match from_value(value) {
        Err(invalid) => invalid.to_string(),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn service_rejection(spec: Value) -> String {
    rejection(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "svc", "namespace": "ns"}, "spec": spec}))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn a_full_service_keeps_every_field() {
    let value = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop",
                     "labels": {"service.kubernetes.io/service-proxy-name": "other"}},
        "spec": {
            "type": "LoadBalancer",
            "clusterIP": "10.96.0.10",
            "clusterIPs": ["10.96.0.10", "fd00::10"],
            "ports": [
                {"name": "http", "port": 80, "targetPort": "web", "nodePort": 30080},
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353},
                {"name": "sctp", "port": 9, "protocol": "SCTP", "targetPort": "9"}
            ],
            "externalIPs": ["192.0.2.1"],
            "sessionAffinity": "ClientIP",
            "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}},
            "externalTrafficPolicy": "Local",
            "internalTrafficPolicy": "Local",
            "healthCheckNodePort": 32000,
            "publishNotReadyAddresses": true,
            "trafficDistribution": "PreferClose"
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.7"}, {"hostname": "lb.example"}]}}
    });
    let Object::Service(s) = object(value) else {
        panic!()
    };
    assert_eq!(s.key, ObjectKey::new("shop", "web"));
    assert_eq!(s.service_type, ServiceType::LoadBalancer);
    assert_eq!(s.cluster_ips, [ip("10.96.0.10"), ip("fd00::10")]);
    assert!(!s.headless);
    assert_eq!(s.ports[0].target_port, TargetPort::Name("web".into()));
    assert_eq!(s.ports[0].node_port, Some(30080));
    assert_eq!(
        (s.ports[1].protocol, s.ports[1].target_port.clone()),
        (Protocol::Udp, TargetPort::Number(5353))
    );
    assert_eq!(
        (s.ports[2].protocol, s.ports[2].target_port.clone()),
        (Protocol::Sctp, TargetPort::Number(9))
    );
    assert_eq!(s.external_ips, [ip("192.0.2.1")]);
    assert_eq!(s.load_balancer_ips, [ip("198.51.100.7")]);
    assert_eq!(
        s.session_affinity,
        Some(SessionAffinity {
            timeout: Duration::from_secs(60)
        })
    );
    assert_eq!(s.external_traffic_policy, TrafficPolicy::Local);
    assert_eq!(s.internal_traffic_policy, TrafficPolicy::Local);
    assert_eq!(s.health_check_node_port, Some(32000));
    assert!(s.publish_not_ready_addresses);
    assert_eq!(
        s.traffic_distribution,
        Some(TrafficDistribution::PreferSameZone)
    );
    assert_eq!(s.service_proxy_name.as_deref(), Some("other"));
}

#[test]
fn defaults_follow_the_api() {
    let s = service(json!({"clusterIP": "10.96.0.1", "ports": [{"port": 80}]}));
    assert_eq!(s.service_type, ServiceType::ClusterIP);
    assert_eq!(s.ports[0].protocol, Protocol::Tcp);
    assert_eq!(s.ports[0].target_port, TargetPort::Number(80));
    assert_eq!(s.session_affinity, None);
    assert_eq!(s.external_traffic_policy, TrafficPolicy::Cluster);

    let s = service(json!({"sessionAffinity": "ClientIP"}));
    assert_eq!(
        s.session_affinity.unwrap().timeout,
        SessionAffinity::DEFAULT_TIMEOUT
    );

    let Object::Service(s) =
        object(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}}))
    else {
        panic!()
    };
    assert_eq!(s.key.namespace, "default");
}

#[test]
fn headless_and_external_name() {
    let s = service(json!({"clusterIP": "None"}));
    assert!(s.headless && s.cluster_ips.is_empty());
    let s = service(json!({"type": "ExternalName", "externalName": "db.example.com."}));
    assert_eq!(s.external_name.as_deref(), Some("db.example.com"));
    assert!(service_rejection(json!({"type": "ExternalName"})).contains("needs spec.externalName"));
}

#[test]
fn bad_services_are_rejected_with_the_reason() {
    let cases = [
        (json!({"type": "Fancy"}), "spec.type \"Fancy\""),
        (
            json!({"clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.2"]}),
            "must equal spec.clusterIPs[0]",
        ),
        (
            json!({"clusterIPs": ["10.96.0.1", "10.96.0.2"]}),
            "at most one IPv4 and one IPv6",
        ),
        (
            json!({"externalIPs": ["nope"]}),
            "spec.externalIPs \"nope\"",
        ),
        (
            json!({"ports": [{"port": 80}, {"port": 81}]}),
            "every port needs a name",
        ),
        (
            json!({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]}),
            "duplicate port 80/TCP",
        ),
        (
            json!({"ports": [{"port": 80, "protocol": "ICMP"}]}),
            "protocol \"ICMP\"",
        ),
        (
            json!({"ports": [{"port": 80, "targetPort": 70000}]}),
            "targetPort 70000 is out of range",
        ),
        (
            json!({"ports": [{"port": 80, "targetPort": "Not_A_Name"}]}),
            "IANA service name",
        ),
        (
            json!({"ports": [{"port": 80, "nodePort": 30000}]}),
            "nodePort is only valid",
        ),
        (
            json!({"sessionAffinity": "Sticky"}),
            "spec.sessionAffinity \"Sticky\"",
        ),
        (
            json!({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}}),
            "timeoutSeconds 0",
        ),
        (
            json!({"externalTrafficPolicy": "Nearest"}),
            "externalTrafficPolicy \"Nearest\"",
        ),
        (
            json!({"trafficDistribution": "Anywhere"}),
            "trafficDistribution \"Anywhere\"",
        ),
        (json!({"ports": "eighty"}), "spec.ports"),
    ];
    for (spec, expected) in cases {
        let reason = service_rejection(spec.clone());
        assert!(reason.starts_with("Service ns/svc: "), "{reason}");
        assert!(
            reason.contains(expected),
            "{spec}: {reason:?} lacks {expected:?}"
        );
    }
}

#[test]
fn endpoint_slices_keep_conditions_topology_and_hints() {
    let value = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
    "metadata": {"name": "web-1", "namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}},
    "addressType": "IPv6",
    "ports": [{"name": "http", "port": 8080}, {"name": "any"}],
    "endpoints": [
        {"addresses": ["fd00::1"], "hostname": "web-0", "nodeName": "n1", "zone": "z1",
         "hints": {"forZones": [{"name": "z1"}], "forNodes": [{"name": "n1"}]}},
        {"addresses": ["fd00::2"], "conditions": {"ready": false, "serving": true, "terminating": true}}
    ]});
    let Object::EndpointSlice(slice) = object(value) else {
        panic!()
    };
    assert_eq!(slice.service_key(), ObjectKey::new("shop", "web"));
    assert_eq!(slice.address_type, AddressFamily::IPv6);
    assert_eq!(slice.ports[1].port, None);
    let [a, b] = &slice.endpoints[..] else {
        panic!()
    };
    assert_eq!(
        a.conditions,
        EndpointConditions {
            ready: true,
            serving: true,
            terminating: false
        }
    );
    assert_eq!(
        (
            a.info.hostname.as_deref(),
            a.info.node_name.as_deref(),
            a.info.zone.as_deref()
        ),
        (Some("web-0"), Some("n1"), Some("z1"))
    );
    assert_eq!(
        (a.info.zone_hints.clone(), a.info.node_hints.clone()),
        (vec!["z1".to_string()], vec!["n1".to_string()])
    );
    assert_eq!(
        b.conditions,
        EndpointConditions {
            ready: false,
            serving: true,
            terminating: true
        }
    );

    let mismatched = rejection(
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "s", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4", "endpoints": [{"addresses": ["fd00::1"]}]}),
    );
    assert!(
        mismatched.contains("does not match addressType IPv4"),
        "{mismatched}"
    );
}

#[test]
fn ingresses_keep_rules_tls_and_class() {
    let value = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
    "metadata": {"name": "web", "namespace": "shop",
                 "annotations": {"kubernetes.io/ingress.class": "legacy"}},
    "spec": {
        "tls": [{"hosts": ["a.example"], "secretName": "a-tls"}],
        "rules": [{"host": "*.example", "http": {"paths": [
            {"path": "/api", "pathType": "Prefix", "backend": {"service": {"name": "api", "port": {"name": "http"}}}},
            {"pathType": "Exact", "backend": {"service": {"name": "root", "port": {"number": 80}}}}
        ]}}]
    }});
    let Object::Ingress(ing) = object(value) else {
        panic!()
    };
    assert_eq!(ing.class_name.as_deref(), Some("legacy"));
    assert_eq!(ing.tls[0].secret_name.as_deref(), Some("a-tls"));
    assert_eq!(ing.rules[0].host.as_deref(), Some("*.example"));
    assert_eq!(
        ing.rules[0].paths[0].backend,
        IngressBackend::Service {
            name: "api".into(),
            port: BackendPort::Name("http".into())
        }
    );
    assert_eq!(
        (
            ing.rules[0].paths[1].path.as_str(),
            ing.rules[0].paths[1].path_type
        ),
        ("/", PathType::Exact)
    );

    let reason = rejection(
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "x"}, "spec": {"rules": [{"host": "a.example"}]}}),
    );
    assert!(reason.contains("neither spec.defaultBackend"), "{reason}");
    let reason = rejection(
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "x"}, "spec": {"defaultBackend": {"service": {"name": "a", "port": {}}}}}),
    );
    assert!(reason.contains("exactly one of name or number"), "{reason}");
}

#[test]
fn versions_and_unknown_kinds() {
    let reason = rejection(
        json!({"apiVersion": "extensions/v1beta1", "kind": "Ingress", "metadata": {"name": "x"}}),
    );
    assert!(
        reason.contains("apiVersion extensions/v1beta1 is not supported for Ingress"),
        "{reason}"
    );
    assert!(rejection(json!({"kind": "Service"})).contains("missing field `apiVersion`"));
    match from_value(
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}}),
    ) {
        Ok(Converted::Ignored(ignored)) => assert!(ignored.warn),
        other => panic!("{other:?}"),
    }
}
