//! [`DnsBuilder`] keeps a [`DnsTable`] in step with snapshots.

use super::{Records, SCHEMA_VERSION, service};
use crate::{DesiredState, ObjectKey, ServiceState};
use imbl::HashMap as PersistentMap;
use std::collections::{BTreeSet, HashMap};
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
    /// The names each Service contributes.
    services: HashMap<ObjectKey, Vec<String>>,
    /// Name -> each contributor's records, sorted by contributor.
    contributions: HashMap<String, Vec<(Contributor, Arc<Records>)>>,
    /// Namespaces with names in the zone: Namespace objects and those holding Services.
    namespaces: BTreeSet<String>,
    /// Services per namespace.
    services_in: HashMap<String, usize>,
    /// The snapshot of the last update: the next one visits only what differs from it.
    seen: DesiredState,
    /// Whether the current update changed any name.
    dirty: bool,
    /// CoreDNS's `endpoint_pod_names`: hostname-less endpoints are named after their pod.
    endpoint_pod_names: bool,
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
            services_in: HashMap::new(),
            seen: DesiredState::default(),
            dirty: false,
            endpoint_pod_names: false,
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

    /// CoreDNS's `endpoint_pod_names`: a headless Service's endpoint without a hostname is
    /// named after its pod rather than its dashed IP. Set it before the first update.
    pub fn with_endpoint_pod_names(mut self, enabled: bool) -> Self {
        self.endpoint_pod_names = enabled;
        self
    }

    pub fn table(&self) -> DnsTable {
        self.table.clone()
    }

    /// Brings the table to `state`; true when anything changed (the serial then moved on).
    /// Visits only the Services that differ from the previous update's snapshot.
    pub fn update(&mut self, state: &DesiredState) -> bool {
        self.dirty = false;
        let previous = std::mem::take(&mut self.seen);
        for (key, entry) in state.service_changes(&previous) {
            self.replace_service(key, entry);
        }
        self.seen = state.clone();
        let namespaces: BTreeSet<String> = state
            .namespaces
            .iter()
            .chain(self.services_in.keys())
            .cloned()
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
        if self.dirty {
            self.table.serial = self.table.serial.wrapping_add(1);
        }
        self.dirty
    }

    fn replace_service(&mut self, key: &ObjectKey, entry: Option<&Arc<ServiceState>>) {
        let contributor = Contributor::Service(key.clone());
        if let Some(names) = self.services.remove(key) {
            for name in names {
                self.set(name, contributor.clone(), None);
            }
            if let Some(count) = self.services_in.get_mut(&key.namespace) {
                *count -= 1;
                if *count == 0 {
                    self.services_in.remove(&key.namespace);
                }
            }
        }
        if let Some(entry) = entry {
            let compiled = service::compile(entry, &self.table.zone, self.endpoint_pod_names);
            let names = compiled.iter().map(|(n, _)| n.clone()).collect();
            for (name, records) in compiled {
                self.set(name, contributor.clone(), Some(records));
            }
            self.services.insert(key.clone(), names);
            *self.services_in.entry(key.namespace.clone()).or_default() += 1;
        }
    }

    /// Sets (or with `None` removes) one contributor's records on `name`, and re-merges it.
    /// A name with one contributor (nearly all of them) serves that contributor's records
    /// as they are, shared, not a merged copy.
    fn set(&mut self, name: String, contributor: Contributor, records: Option<Records>) {
        let by = self.contributions.entry(name.clone()).or_default();
        let existed = !by.is_empty();
        let at = by.binary_search_by(|(c, _)| c.cmp(&contributor));
        match (records, at) {
            (Some(mut records), at) => {
                records.normalize();
                let records = Arc::new(records);
                match at {
                    Ok(i) => by[i].1 = records,
                    // Sized to fit: most names never get a second contributor.
                    Err(_) if by.is_empty() => *by = vec![(contributor, records)],
                    Err(i) => by.insert(i, (contributor, records)),
                }
            }
            (None, Ok(i)) => {
                by.remove(i);
            }
            (None, Err(_)) => {}
        }
        if by.is_empty() {
            self.contributions.remove(&name);
            self.dirty |= self.table.names.remove(&name).is_some();
            if existed {
                self.count_ancestors(&name, false);
            }
            return;
        }
        let merged = match by.as_slice() {
            [(_, only)] => only.clone(),
            many => {
                let mut merged = Records::default();
                for (_, records) in many {
                    merged.merge(records);
                }
                merged.normalize();
                Arc::new(merged)
            }
        };
        if self
            .table
            .names
            .get(&name)
            .is_some_and(|old| **old == *merged)
        {
            return;
        }
        self.dirty = true;
        self.table.names.insert(name.clone(), merged);
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
