//! Pinned maps of another layout: a daemon upgraded over the pins of an older one whose map
//! types differ (say, a conntrack value grew a field, or `STATS` a counter) would load its
//! programs against maps of the old sizes, which the verifier rejects or which silently drop
//! the new counter. Such pins are removed before loading, so those maps start afresh (the
//! old programs keep theirs until their links are replaced); every other map is adopted.

use aya::maps::MapInfo;

use crate::common::{
    AffinityKey, AffinityValue, Backend, BackendSlotKey, CtConfig, CtForward, CtKey, CtReverse,
    FrontendKey, FrontendValue, MaglevKey, MaglevTable, NodeAddrs, RevNatKey, RevNatSlot,
    RevNatValue, SockRevNat, maps, stats,
};
use crate::pin::PinLayout;

/// A map as this build defines it: name, key and value sizes, and the entry count of the
/// fixed-size arrays (the others' capacity is configuration, adopted as pinned).
type Layout = (&'static str, usize, usize, Option<u32>);

const LAYOUTS: [Layout; maps::ALL.len()] = [
    (
        maps::FRONTENDS,
        size_of::<FrontendKey>(),
        size_of::<FrontendValue>(),
        None,
    ),
    (
        maps::EXT_FRONTENDS,
        size_of::<FrontendKey>(),
        size_of::<FrontendValue>(),
        None,
    ),
    (
        maps::BACKENDS,
        size_of::<BackendSlotKey>(),
        size_of::<Backend>(),
        None,
    ),
    (
        maps::NODE_ADDRS,
        size_of::<u32>(),
        size_of::<NodeAddrs>(),
        Some(1),
    ),
    (
        maps::REVNAT,
        size_of::<RevNatKey>(),
        size_of::<RevNatValue>(),
        None,
    ),
    (
        maps::REVNAT_SLOTS,
        size_of::<u32>(),
        size_of::<RevNatSlot>(),
        Some(maps::REVNAT_SLOTS_ENTRIES),
    ),
    (
        maps::SOCK_REVNAT,
        size_of::<u64>(),
        size_of::<SockRevNat>(),
        None,
    ),
    (
        maps::AFFINITY,
        size_of::<AffinityKey>(),
        size_of::<AffinityValue>(),
        None,
    ),
    (
        maps::CT_FWD,
        size_of::<CtKey>(),
        size_of::<CtForward>(),
        None,
    ),
    (
        maps::CT_REV,
        size_of::<CtKey>(),
        size_of::<CtReverse>(),
        None,
    ),
    (
        maps::CT_CONFIG,
        size_of::<u32>(),
        size_of::<CtConfig>(),
        Some(1),
    ),
    (
        maps::MAGLEV,
        size_of::<MaglevKey>(),
        size_of::<MaglevTable>(),
        None,
    ),
    (
        maps::STATS,
        size_of::<u32>(),
        size_of::<u64>(),
        Some(stats::COUNT),
    ),
];

/// Removes the pins under `pins` of maps whose layout differs from this build's.
pub(super) fn retire_incompatible_pins(pins: &PinLayout) {
    for (name, key_size, value_size, entries) in LAYOUTS {
        let path = pins.map(name);
        let Ok(info) = MapInfo::from_pin(&path) else {
            continue;
        };
        if fits(&info, key_size, value_size, entries) {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::warn!(
                map = name,
                pinned_key_size = info.key_size(),
                pinned_value_size = info.value_size(),
                pinned_max_entries = info.max_entries(),
                "lb: a pinned map has another layout than this version's; starting it afresh"
            ),
            Err(error) => tracing::error!(map = name, %error, "lb: cannot unpin an outdated map"),
        }
    }
}

fn fits(info: &MapInfo, key_size: usize, value_size: usize, entries: Option<u32>) -> bool {
    usize::try_from(info.key_size()).is_ok_and(|k| k == key_size)
        && usize::try_from(info.value_size()).is_ok_and(|v| v == value_size)
        && entries.is_none_or(|n| n == info.max_entries())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_tests::{netns::Bpffs, require_root, require_tool};

    #[test]
    fn every_map_has_a_layout() {
        let mut named: Vec<&str> = LAYOUTS.iter().map(|l| l.0).collect();
        let mut all = maps::ALL.to_vec();
        named.sort_unstable();
        all.sort_unstable();
        assert_eq!(named, all);
    }

    /// Pins as an older version left them (a conntrack value 4 bytes shorter, one counter
    /// fewer) next to one of the current layout, on a bpffs of the test's own.
    #[test]
    fn pins_of_another_layout_are_retired_and_the_others_kept() {
        let test = "pins_of_another_layout_are_retired_and_the_others_kept";
        if !require_root(test) || !require_tool(test, "bpftool") {
            return;
        }
        let bpffs = Bpffs::mount().expect("bpffs");
        let pins = PinLayout::new(bpffs.path().join("ferry"));
        pins.create().expect("pin folders");
        let pin = |name: &str, kind: &str, key: usize, value: usize, entries: u32| {
            let path = pins.map(name);
            let path = path.to_str().expect("UTF-8 path");
            let (key, value, entries) = (key.to_string(), value.to_string(), entries.to_string());
            ferry_tests::netns::run(
                "bpftool",
                &[
                    "map", "create", path, "type", kind, "key", &key, "value", &value, "entries",
                    &entries, "name", name,
                ],
            )
            .expect("bpftool map create");
        };
        pin(maps::CT_FWD, "lru_hash", size_of::<CtKey>(), 40, 1024);
        pin(
            maps::CT_REV,
            "lru_hash",
            size_of::<CtKey>(),
            size_of::<CtReverse>(),
            1024,
        );
        pin(maps::STATS, "percpu_array", 4, 8, stats::COUNT - 1);

        retire_incompatible_pins(&pins);
        assert!(!pins.map(maps::CT_FWD).exists(), "outdated value size");
        assert!(!pins.map(maps::STATS).exists(), "outdated entry count");
        assert!(
            pins.map(maps::CT_REV).exists(),
            "current layout, capacity as pinned"
        );
    }
}
