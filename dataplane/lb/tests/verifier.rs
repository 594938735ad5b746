//! Every program in the embedded object passes the real kernel verifier, and the object holds
//! exactly the programs and maps the shared crate names. Needs root (see
//! `ferry_tests::privileged`).

use ferry_lb::common::{maps, programs};
use ferry_tests::privileged::{chain, require_bpf};

fn sorted(names: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = names.iter().map(ToString::to_string).collect();
    names.sort();
    names
}

#[test]
fn every_program_passes_the_verifier() {
    if !require_bpf("every_program_passes_the_verifier", ferry_lb::EBPF_OBJECT) {
        return;
    }
    let mut ebpf = ferry_lb::load().unwrap_or_else(|e| panic!("{}", chain(&e)));
    let loaded = ferry_lb::load_all_programs(&mut ebpf).unwrap_or_else(|e| panic!("{}", chain(&e)));
    assert_eq!(
        loaded,
        sorted(&programs::ALL),
        "programs loaded through the verifier"
    );

    let mut map_names: Vec<String> = ebpf.maps().map(|(name, _)| name.to_owned()).collect();
    map_names.sort();
    assert_eq!(map_names, sorted(&maps::ALL), "maps in the object");
}
