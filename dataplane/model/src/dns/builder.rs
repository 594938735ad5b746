//! [`DnsBuilder`] keeps a [`DnsTable`] in step with snapshots.

use super::{Records, SCHEMA_VERSION, service};
use crate::{DesiredState, ObjectKey, ServiceState};
use imbl::HashMap as PersistentMap;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// The zone's names and records at one moment. Cloning is O(1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsTable {
    zone: String,
    serial: u32,
    names: PersistentMap<String, Arc<Records>>,
    /// Names that exist in the zone: with records, or above a name with records (empty
    /// non-terminals, which answer NODATA rather than NXDOMAIN), counted by descendants.
    exists: PersistentMap<String, u32>,
}

impl DnsTable {
    /// The cluster zone, lowercase, without the trailing dot.
    pub fn zone(&self) -> &str {
        &self.zone
    }

    /// Bumped on every change, for the SOA.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// The records of `name` (lowercase, no trailing dot).
    pub fn records(&self, name: &str) -> Option<&Records> {
        self.names.get(name).map(|r| &**r)
    }

    /// Whether `name` exists in the zone (with records or as an empty non-terminal).
    pub fn exists(&self, name: &str) -> bool {
        self.exists.contains_key(name)
    }

    /// Names with records.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Who put records on a name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Contributor {
    /// The zone itself: `dns-version`, the apex, `svc`, `pod`, namespaces.
    Zone,
    Service(ObjectKey),
}

/// Compiles snapshots into [`DnsTable`]s, recompiling only Services whose snapshot entry
/// changed.
#[derive(Debug)]
pub struct DnsBuilder {
    table: DnsTable,
    services: HashMap<ObjectKey, (Arc<ServiceState>, Vec<String>)>,
    contributions: HashMap<String, BTreeMap<Contributor, Records>>,
    namespaces: BTreeSet<String>,
}

impl DnsBuilder {
    /// A table for `zone` (e.g. `cluster.local`) holding only the zone's own names; the SOA
    /// serial starts at `serial` (a caller's clock, so it grows across restarts).
    pub fn new(zone: &str, serial: u32) -> Self {
        let zone = zone.trim_end_matches('.').to_ascii_lowercase();
        let mut builder = Self {
            table: DnsTable {
                zone: zone.clone(),
                serial,
                names: PersistentMap::new(),
                exists: PersistentMap::new(),
            },
            services: HashMap::new(),
            contributions: HashMap::new(),
            namespaces: BTreeSet::new(),
        };
        let version = Records {
            txt: vec![SCHEMA_VERSION.to_string()],
            ..Records::default()
        };
        builder.set(
            format!("dns-version.{zone}"),
            Contributor::Zone,
            Some(version),
        );
        for name in [zone.clone(), format!("svc.{zone}"), format!("pod.{zone}")] {
            builder.set(name, Contributor::Zone, Some(Records::default()));
        }
        builder
    }

    pub fn table(&self) -> DnsTable {
        self.table.clone()
    }

    /// Brings the table to `state`; true when anything changed (the serial then moved on).
    pub fn update(&mut self, state: &DesiredState) -> bool {
        let before = self.table.clone();
        let gone: Vec<ObjectKey> = self
            .services
            .keys()
            .filter(|k| !state.services.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            self.replace_service(&key, None);
        }
        for (key, entry) in &state.services {
            let unchanged = self
                .services
                .get(key)
                .is_some_and(|(source, _)| Arc::ptr_eq(source, entry));
            if !unchanged {
                self.replace_service(key, Some(entry));
            }
        }
        let namespaces: BTreeSet<String> = state
            .namespaces
            .iter()
            .cloned()
            .chain(state.services.keys().map(|k| k.namespace.clone()))
            .collect();
        let zone = self.table.zone.clone();
        for ns in self
            .namespaces
            .difference(&namespaces)
            .cloned()
            .collect::<Vec<_>>()
        {
            for name in namespace_names(&ns, &zone) {
                self.set(name, Contributor::Zone, None);
            }
        }
        for ns in namespaces
            .difference(&self.namespaces)
            .cloned()
            .collect::<Vec<_>>()
        {
            for name in namespace_names(&ns, &zone) {
                self.set(name, Contributor::Zone, Some(Records::default()));
            }
        }
        self.namespaces = namespaces;
        let changed = self.table.names != before.names || self.table.exists != before.exists;
        if changed {
            self.table.serial = self.table.serial.wrapping_add(1);
        }
        changed
    }

    fn replace_service(&mut self, key: &ObjectKey, entry: Option<&Arc<ServiceState>>) {
        let contributor = Contributor::Service(key.clone());
        if let Some((_, names)) = self.services.remove(key) {
            for name in names {
                self.set(name, contributor.clone(), None);
            }
        }
        if let Some(entry) = entry {
            let compiled = service::compile(entry, &self.table.zone);
            let names = compiled.iter().map(|(n, _)| n.clone()).collect();
            for (name, records) in compiled {
                self.set(name, contributor.clone(), Some(records));
            }
            self.services.insert(key.clone(), (entry.clone(), names));
        }
    }

    /// Sets (or with `None` removes) one contributor's records on `name`, and re-merges it.
    fn set(&mut self, name: String, contributor: Contributor, records: Option<Records>) {
        let by = self.contributions.entry(name.clone()).or_default();
        let existed = !by.is_empty();
        match records {
            Some(records) => {
                by.insert(contributor, records);
            }
            None => {
                by.remove(&contributor);
            }
        }
        if by.is_empty() {
            self.contributions.remove(&name);
            self.table.names.remove(&name);
            if existed {
                self.count_ancestors(&name, false);
            }
            return;
        }
        let mut merged = Records::default();
        for records in by.values() {
            merged.merge(records);
        }
        merged.normalize();
        self.table.names.insert(name.clone(), Arc::new(merged));
        if !existed {
            self.count_ancestors(&name, true);
        }
    }

    /// Counts `name` and its ancestors inside the zone as existing (or no longer). Names
    /// outside the zone (reverse names) only count themselves.
    fn count_ancestors(&mut self, name: &str, add: bool) {
        let zone = &self.table.zone;
        let mut current = name;
        loop {
            let count = self.table.exists.get(current).copied().unwrap_or(0);
            let count = if add {
                count + 1
            } else {
                count.saturating_sub(1)
            };
            if count == 0 {
                self.table.exists.remove(current);
            } else {
                self.table.exists.insert(current.to_string(), count);
            }
            if current == zone || !current.ends_with(&format!(".{zone}")) {
                break;
            }
            match current.split_once('.') {
                Some((_, parent)) => current = parent,
                None => break,
            }
        }
    }
}

fn namespace_names(ns: &str, zone: &str) -> [String; 2] {
    [format!("{ns}.svc.{zone}"), format!("{ns}.pod.{zone}")]
}
