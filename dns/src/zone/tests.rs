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
