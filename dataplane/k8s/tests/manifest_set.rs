//! The manifest folder: parsing, validation with named errors, and diffs on change.

use ferry_k8s::Change;
use ferry_k8s::manifest::{ManifestSet, Problem, Severity};
use ferry_model::{Kind, Object, ObjectKey, ObjectRef};
use std::fs;
use std::path::Path;

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIP: 10.96.0.10
  ports: [{name: http, port: 80, targetPort: 8080}]
";

const SLICE: &str = "apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: shop
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- addresses: [10.0.0.1]
  conditions: {ready: true}
  nodeName: node-a
";

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn refs(changes: &[Change]) -> Vec<String> {
    let mut out: Vec<String> = changes
        .iter()
        .map(|c| match c {
            Change::Apply(o) => format!("apply {}", o.object_ref()),
            Change::Delete(r) => format!("delete {r}"),
        })
        .collect();
    out.sort();
    out
}

fn errors(problems: &[Problem]) -> Vec<String> {
    problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .map(ToString::to_string)
        .collect()
}

fn service_ref() -> ObjectRef {
    ObjectRef::new(Kind::Service, ObjectKey::new("shop", "web"))
}

#[test]
fn reads_yaml_documents_lists_and_json_recursively() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.yaml", &format!("{SERVICE}---\n{SLICE}---\n"));
    write(
        dir.path(),
        "nested/deeper/list.yml",
        "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: shop}}\n",
    );
    write(
        dir.path(),
        "node.json",
        r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"node-a","labels":{"topology.kubernetes.io/zone":"z1"}}}"#,
    );
    write(dir.path(), ".hidden/ignored.yaml", "not: [valid");
    write(dir.path(), "notes.txt", "not a manifest");
    let mut set = ManifestSet::new(dir.path());
    let rescan = set.rescan().unwrap();
    assert_eq!(
        refs(&rescan.changes),
        [
            "apply EndpointSlice shop/web-1",
            "apply Namespace shop",
            "apply Node node-a",
            "apply Service shop/web",
        ]
    );
    assert!(errors(&rescan.problems).is_empty(), "{:?}", rescan.problems);
    assert_eq!(set.objects().len(), 4);
    // Nothing changed: nothing read, nothing emitted.
    let again = set.rescan().unwrap();
    assert_eq!((again.files_read, again.changes.len()), (0, 0));
}

#[test]
fn tls_secrets_from_data_and_string_data_other_secrets_ignored() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "secrets.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\ntype: kubernetes.io/tls\ndata: {tls.crt: Y2VydA==, tls.key: a2V5}\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata: {name: b}\ntype: kubernetes.io/tls\nstringData: {tls.crt: cert, tls.key: key}\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata: {name: c}\ntype: Opaque\ndata: {x: eA==}\n",
    );
    let mut set = ManifestSet::new(dir.path());
    let rescan = set.rescan().unwrap();
    assert!(rescan.problems.is_empty(), "{:?}", rescan.problems);
    let secrets: Vec<_> = set
        .objects()
        .into_iter()
        .map(|o| match o {
            Object::Secret(s) => (s.key.name.clone(), s.cert_pem.clone(), s.key_pem.clone()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        secrets,
        [
            ("a".to_string(), b"cert".to_vec(), b"key".to_vec()),
            ("b".to_string(), b"cert".to_vec(), b"key".to_vec()),
        ]
    );
}

#[test]
fn every_mistake_is_named_by_file_document_and_object() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bad.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {namespace: shop}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: badip}\nspec: {clusterIP: 10.96.0.300}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: badport}\nspec: {ports: [{port: 70000}]}\n---\n\
         apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: orphan}\naddressType: IPv4\nendpoints: []\n",
    );
    write(dir.path(), "a.yaml", SERVICE);
    write(dir.path(), "b.yaml", SERVICE);
    write(dir.path(), "broken.yaml", "kind: Service\n  metadata: [\n");
    let mut set = ManifestSet::new(dir.path());
    set.rescan().unwrap();
    let problems = set.problems();
    let errors = errors(&problems);
    let expect = [
        "bad.yaml: document 1: Service shop/(unnamed)",
        "bad.yaml: document 2: Service default/badip: spec.clusterIPs \"10.96.0.300\" is not an IP address",
        "bad.yaml: document 3: Service default/badport: spec.ports[port 70000]: port 70000 is out of range 1-65535",
        "bad.yaml: document 5: EndpointSlice default/orphan: missing label kubernetes.io/service-name",
        "b.yaml: Service shop/web: duplicate object: already defined in",
        "broken.yaml: invalid YAML",
    ];
    for e in expect {
        assert!(
            errors.iter().any(|p| p.contains(e)),
            "no problem like {e:?} in {errors:#?}"
        );
    }
    assert_eq!(errors.len(), expect.len(), "{errors:#?}");
    let warning = problems
        .iter()
        .find(|p| p.severity == Severity::Warning)
        .unwrap();
    assert!(
        warning.to_string().contains("document 4: Deployment app"),
        "{warning}"
    );
    // The valid Service is still served, once.
    assert_eq!(set.objects().len(), 1);
}

#[test]
fn edits_and_removals_become_diffs() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "svc.yaml", SERVICE);
    write(dir.path(), "slice.yaml", SLICE);
    let mut set = ManifestSet::new(dir.path());
    set.rescan().unwrap();

    write(
        dir.path(),
        "svc.yaml",
        &SERVICE.replace("10.96.0.10", "10.96.0.11"),
    );
    let rescan = set.rescan().unwrap();
    assert_eq!(refs(&rescan.changes), ["apply Service shop/web"]);
    assert_eq!(rescan.files_read, 1);

    fs::remove_file(dir.path().join("slice.yaml")).unwrap();
    let rescan = set.rescan().unwrap();
    assert_eq!(refs(&rescan.changes), ["delete EndpointSlice shop/web-1"]);
}

#[test]
fn a_broken_file_keeps_its_last_good_objects_until_it_parses_again() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "all.yaml", &format!("{SERVICE}---\n{SLICE}"));
    let mut set = ManifestSet::new(dir.path());
    set.rescan().unwrap();

    write(dir.path(), "all.yaml", "apiVersion: v1\nkind: [unclosed\n");
    let rescan = set.rescan().unwrap();
    assert!(rescan.changes.is_empty(), "{:?}", rescan.changes);
    assert!(errors(&rescan.problems)[0].contains("keeping its 2 last good objects"));
    assert_eq!(set.objects().len(), 2);

    write(dir.path(), "all.yaml", SERVICE);
    let rescan = set.rescan().unwrap();
    assert_eq!(refs(&rescan.changes), ["delete EndpointSlice shop/web-1"]);
    assert!(set.problems().is_empty());
}

#[test]
fn an_invalid_edit_keeps_the_last_good_version_of_that_object() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "svc.yaml", SERVICE);
    let mut set = ManifestSet::new(dir.path());
    set.rescan().unwrap();
    let good = set.objects();

    write(
        dir.path(),
        "svc.yaml",
        &SERVICE.replace("port: 80,", "port: 0,"),
    );
    let rescan = set.rescan().unwrap();
    assert!(rescan.changes.is_empty());
    assert!(errors(&rescan.problems)[0].contains("keeping its last good version"));
    assert_eq!(set.objects(), good);
}

#[test]
fn a_duplicate_takes_over_when_the_owner_drops_the_object() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.yaml", SERVICE);
    write(
        dir.path(),
        "b.yaml",
        &SERVICE.replace("10.96.0.10", "10.96.0.99"),
    );
    let mut set = ManifestSet::new(dir.path());
    set.rescan().unwrap();
    assert_eq!(errors(&set.problems()).len(), 1);

    fs::remove_file(dir.path().join("a.yaml")).unwrap();
    let rescan = set.rescan().unwrap();
    assert_eq!(refs(&rescan.changes), ["apply Service shop/web"]);
    let Change::Apply(Object::Service(svc)) = &rescan.changes[0] else {
        panic!()
    };
    assert_eq!(svc.cluster_ips[0].to_string(), "10.96.0.99");
    assert!(set.problems().is_empty());
    assert_eq!(set.objects()[0].object_ref(), service_ref());
}
