use super::*;

#[test]
fn lookup_keys_are_lowercase_and_refuse_odd_labels() {
    let name = Name::from_ascii("Web.Shop.SVC.cluster.local.").unwrap();
    assert_eq!(
        lookup_key(&name).as_deref(),
        Some("web.shop.svc.cluster.local")
    );
    assert_eq!(lookup_key(&Name::root()).as_deref(), Some(""));
    let dotted = Name::from_labels(vec![&b"a.b"[..], b"local"]).unwrap();
    assert_eq!(lookup_key(&dotted), None);
    let binary = Name::from_labels(vec![&b"\xff"[..], b"local"]).unwrap();
    assert_eq!(lookup_key(&binary), None);
}

#[test]
fn below_means_the_zone_or_a_whole_label_under_it() {
    assert!(is_below("cluster.local", "cluster.local"));
    assert!(is_below("a.cluster.local", "cluster.local"));
    assert!(!is_below("acluster.local", "cluster.local"));
    assert!(!is_below("local", "cluster.local"));
}

mod reverse {
    use super::super::*;
    use ferry_model::dns::DnsBuilder;
    use ferry_model::{DesiredState, ObjectKey, Service, ServicePort, ServiceState};
    use hickory_proto::rr::rdata::SOA;
    use std::sync::Arc;

    const V4: &str = "10.0.96.10.in-addr.arpa.";
    const V6: &str = "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.";

    fn zone() -> Zone {
        Zone::new("cluster.local", 30, PodMode::Insecure)
    }

    fn snapshot() -> Snapshot {
        let mut service = Service::cluster_ip(
            ObjectKey::new("shop", "web"),
            "10.96.0.10".parse().unwrap(),
            vec![ServicePort::tcp("http", 80)],
        );
        service.cluster_ips.push("fd00::10".parse().unwrap());
        let mut state = DesiredState::default();
        state.services.insert(
            service.key.clone(),
            Arc::new(ServiceState {
                service: service.into(),
                endpoints: vec![],
            }),
        );
        let mut builder = DnsBuilder::new("cluster.local", 7);
        builder.update(&state);
        Snapshot::new(builder.table(), 30)
    }

    fn answer(lookup: Lookup) -> Answer {
        match lookup {
            Lookup::Answer(answer) => answer,
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    #[test]
    fn nodata_for_a_known_reverse_name_carries_the_reverse_zones_soa() {
        let snapshot = snapshot();
        for (qname, apex) in [(V4, "in-addr.arpa."), (V6, "ip6.arpa.")] {
            let nodata = answer(zone().lookup(Some(&snapshot), &name(qname), RecordType::A, 0));
            assert_eq!(nodata.rcode, ResponseCode::NoError, "{qname}");
            assert!(nodata.authoritative && nodata.answers.is_empty(), "{qname}");
            let [soa] = nodata.authorities.as_slice() else {
                panic!(
                    "{qname}: one SOA in authority, got {:?}",
                    nodata.authorities
                )
            };
            assert_eq!(soa.name.to_ascii(), apex);
            let RData::SOA(data) = &soa.data else {
                panic!("{soa:?}")
            };
            let expected = SOA::new(
                name(&format!("ns.dns.{apex}")),
                name(&format!("hostmaster.{apex}")),
                snapshot.table().serial(),
                7200,
                1800,
                86400,
                30,
            );
            assert_eq!(
                *data, expected,
                "the timers and serial of the cluster's SOA"
            );
            // The PTR itself still answers, with nothing in authority.
            let ptr = answer(zone().lookup(Some(&snapshot), &name(qname), RecordType::PTR, 0));
            assert_eq!(ptr.answers.len(), 1, "{qname}");
            assert!(ptr.authorities.is_empty(), "{qname}");
        }
    }

    #[test]
    fn reverse_names_get_servfail_before_the_first_sync_and_unknown_ones_forward_after() {
        for qname in [V4, V6, "9.9.9.10.in-addr.arpa."] {
            for qtype in [RecordType::PTR, RecordType::A] {
                let before = answer(zone().lookup(None, &name(qname), qtype, 0));
                assert_eq!(before.rcode, ResponseCode::ServFail, "{qname} {qtype}");
                assert!(before.answers.is_empty() && before.authorities.is_empty());
            }
        }
        let snapshot = snapshot();
        let unknown = zone().lookup(
            Some(&snapshot),
            &name("9.9.9.10.in-addr.arpa."),
            RecordType::PTR,
            0,
        );
        assert!(matches!(unknown, Lookup::Forward), "{unknown:?}");
        let other = zone().lookup(None, &name("example.com."), RecordType::A, 0);
        assert!(matches!(other, Lookup::Forward), "{other:?}");
    }
}
