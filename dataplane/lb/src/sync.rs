//! From `DesiredState` snapshots to BPF map updates, by diff.
//!
//! [`LbState`] remembers what it wrote. [`LbState::sync`] compiles only the Services whose
//! snapshot entry changed (pointer comparison of the shared `Arc`s) and reconciles only their
//! frontends, in an order that keeps every intermediate state consistent: a new backend set is
//! written under a new revision first, a frontend is switched to it in one update, and a
//! revision is deleted only once no frontend points at it (see [`sets`]). A frontend
//! claimed by several Services goes to the first by namespace/name, whatever the order of
//! events. A frontend whose update fails keeps its old entry and is retried on the next sync.

mod sets;

use crate::LbError;
use crate::common::{
    Backend, BackendSlotKey, FRONTEND_FLAG_AFFINITY, FRONTEND_FLAG_MAGLEV,
    FRONTEND_FLAG_PRESERVE_CLIENT, Frontend, FrontendKey, FrontendValue, IPPROTO_TCP, IPPROTO_UDP,
    MaglevKey, MaglevTable, addr,
};
use ferry_model::lb::{HealthCheck, LbBackend, LbService, NodeContext, Scope, compile_service};
use ferry_model::{AddressFamily, DesiredState, ObjectKey, Protocol, ServiceState};
#[cfg(test)]
use ferry_model::{Kind, ObjectRef};
use sets::{BackendSets, SetKey, SetRef};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

/// One map update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapOp {
    PutBackend(BackendSlotKey, Backend),
    /// The frontend with its set's first slots inline.
    PutFrontend(Scope, FrontendKey, Box<FrontendValue>),
    DeleteFrontend(Scope, FrontendKey),
    DeleteBackend(BackendSlotKey),
    PutMaglev(MaglevKey, Box<MaglevTable>),
    DeleteMaglev(MaglevKey),
}

/// How the tc path picks a backend for a new flow to a packet-scope frontend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Algorithm {
    /// Uniformly at random (kube-proxy's behaviour).
    #[default]
    Random,
    /// By the flow's 5-tuple in a Maglev table: every node picks the same backend for a flow,
    /// and a backend change moves about 1/N of the flows.
    Maglev,
}

/// What one [`LbState::sync`] did.
#[derive(Debug, Default)]
pub struct SyncReport {
    /// Services compiled again because their snapshot entry changed.
    pub services_changed: usize,
    /// Map operations applied.
    pub ops: usize,
    /// UDP backends that left a frontend: connected UDP sockets aimed at them must be
    /// re-pointed (kube-proxy flushes their conntrack entries for the same reason).
    pub stale_udp_backends: BTreeSet<SocketAddr>,
    /// Frontends claimed by several Services: the first by namespace/name is programmed, the
    /// others are reported here.
    pub conflicts: Vec<(ObjectKey, SocketAddr)>,
    /// Frontends whose update failed (e.g. a full map); retried on the next sync.
    pub failed: Vec<(SocketAddr, LbError)>,
}

/// A frontend in a map: `FRONTENDS` for [`Scope::Socket`], `EXT_FRONTENDS` for [`Scope::Packet`].
type Slot = (Scope, FrontendKey);

/// What one Service wants behind one frontend.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted {
    addr: SocketAddr,
    protocol: Protocol,
    set: SetKey,
    backends: Arc<[LbBackend]>,
    maglev: bool,
    flags: u32,
    affinity_timeout_secs: u32,
}

/// A Service's frontends, by slot. A list: a Service has a handful of frontends, and a map
/// per Service would cost more than its contents.
#[derive(Debug, Clone)]
struct Record {
    wants: Vec<(Slot, Wanted)>,
}

impl Record {
    fn get(&self, slot: &Slot) -> Option<&Wanted> {
        self.wants.iter().find(|(s, _)| s == slot).map(|(_, w)| w)
    }

    fn slots(&self) -> impl Iterator<Item = &Slot> {
        self.wants.iter().map(|(s, _)| s)
    }
}

#[derive(Debug, Clone)]
struct Programmed {
    owner: ObjectKey,
    addr: SocketAddr,
    protocol: Protocol,
    value: Frontend,
}

/// What the maps hold, as this process wrote them.
#[derive(Debug, Default)]
pub struct LbState {
    node: NodeContext,
    algorithm: Algorithm,
    services: HashMap<ObjectKey, Record>,
    /// Every Service compiling a frontend, whether or not it won it.
    claims: HashMap<Slot, Vec<ObjectKey>>,
    /// The frontends in the maps.
    programmed: HashMap<Slot, Programmed>,
    sets: BackendSets,
    /// Frontends whose last update failed.
    retry: BTreeSet<Slot>,
    /// `externalTrafficPolicy: Local` health checks of the compiled Services.
    health: BTreeMap<ObjectKey, HealthCheck>,
    /// The snapshot of the last sync: the next one visits only what differs from it.
    seen: DesiredState,
    /// Frontends claimed by more than one Service.
    conflicted: BTreeSet<Slot>,
    /// Programmed frontends per owning Service, and those of socket scope: kept as they
    /// change, so metrics cost nothing per sync.
    owners: HashMap<ObjectKey, usize>,
    socket_frontends: usize,
}

impl LbState {
    pub fn new(node: NodeContext) -> Self {
        Self {
            node,
            ..Self::default()
        }
    }

    /// Sets the tc path's backend choice (random unless set).
    #[must_use]
    pub fn with_algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// Rebuilds the record of what the maps hold from their contents (a restarted daemon over
    /// pinned maps). Every adopted frontend is reconciled by the first sync, so nothing is
    /// flushed: entries that are still wanted stay as they are. Returns the backend slots no
    /// frontend points at, for the caller to delete.
    pub fn adopt(
        node: NodeContext,
        frontends: Vec<(Scope, FrontendKey, Frontend)>,
        backends: Vec<(BackendSlotKey, Backend)>,
        tables: &[MaglevKey],
    ) -> (Self, Vec<BackendSlotKey>, Vec<MaglevKey>) {
        let mut state = Self::new(node);
        let mut slots: HashMap<SetRef, HashMap<u32, Backend>> = HashMap::new();
        for (key, value) in backends {
            slots
                .entry((key.service_id, key.revision))
                .or_default()
                .insert(key.slot, value);
        }
        let mut pointed = Vec::new();
        for (scope, key, value) in frontends {
            let Some(addr) = frontend_addr(&key) else {
                continue;
            };
            pointed.push(((value.service_id, value.revision), value.backend_count));
            let protocol = if key.proto == IPPROTO_TCP {
                Protocol::Tcp
            } else {
                Protocol::Udp
            };
            let programmed = Programmed {
                owner: ObjectKey::new("", ""),
                addr,
                protocol,
                value,
            };
            state.put_programmed((scope, key), programmed);
            // The first sync reconciles every adopted frontend, deleting the unwanted ones.
            state.retry.insert((scope, key));
        }
        let (sets, garbage, stale_tables) = BackendSets::adopt(&pointed, slots, tables);
        state.sets = sets;
        (state, garbage, stale_tables)
    }

    /// Records a frontend as in the map; returns what it replaced.
    fn put_programmed(&mut self, slot: Slot, programmed: Programmed) -> Option<Programmed> {
        *self.owners.entry(programmed.owner.clone()).or_default() += 1;
        let old = self.programmed.insert(slot, programmed);
        match &old {
            Some(old) => self.forget_owner(&old.owner.clone()),
            None if slot.0 == Scope::Socket => self.socket_frontends += 1,
            None => {}
        }
        old
    }

    /// Records a frontend as gone from the map.
    fn take_programmed(&mut self, slot: &Slot) -> Option<Programmed> {
        let old = self.programmed.remove(slot)?;
        self.forget_owner(&old.owner);
        if slot.0 == Scope::Socket {
            self.socket_frontends -= 1;
        }
        Some(old)
    }

    fn forget_owner(&mut self, owner: &ObjectKey) {
        if let Some(count) = self.owners.get_mut(owner) {
            *count -= 1;
            if *count == 0 {
                self.owners.remove(owner);
            }
        }
    }

    /// Frontends claimed by more than one Service now.
    pub fn conflicts(&self) -> usize {
        self.conflicted.len()
    }

    /// Services owning at least one programmed frontend.
    pub fn services(&self) -> usize {
        self.owners.len()
    }

    pub fn frontends(&self) -> usize {
        self.programmed.len()
    }

    /// The health checks to serve: Service -> node port and local endpoint count.
    pub fn health_checks(&self) -> &BTreeMap<ObjectKey, HealthCheck> {
        &self.health
    }

    /// Programmed frontends in `FRONTENDS` and in `EXT_FRONTENDS`.
    pub fn frontends_by_scope(&self) -> (usize, usize) {
        (
            self.socket_frontends,
            self.programmed.len() - self.socket_frontends,
        )
    }

    pub fn backend_slots(&self) -> usize {
        self.sets.slots()
    }

    /// Brings the maps to `state` through `apply`, touching only the frontends of Services
    /// whose snapshot entry changed.
    pub fn sync(
        &mut self,
        state: &DesiredState,
        node: &NodeContext,
        mut apply: impl FnMut(&MapOp) -> Result<(), LbError>,
    ) -> SyncReport {
        let mut report = SyncReport::default();
        let node_changed = *node != self.node;
        self.node = node.clone();
        let mut dirty: BTreeSet<Slot> = std::mem::take(&mut self.retry);
        // Only what changed since the last sync; everything when this node's context moved.
        let previous = if node_changed {
            DesiredState::default()
        } else {
            std::mem::take(&mut self.seen)
        };
        if node_changed {
            let gone: Vec<ObjectKey> = self
                .services
                .keys()
                .filter(|k| !state.services.contains_key(*k))
                .cloned()
                .collect();
            for key in gone {
                report.services_changed += 1;
                self.record(&key, None, &mut dirty);
            }
        }
        for (key, entry) in state.service_changes(&previous) {
            report.services_changed += 1;
            self.record(key, entry, &mut dirty);
        }
        self.seen = state.clone();
        for slot in &dirty {
            match self.claims.get(slot).filter(|c| c.len() > 1) {
                Some(claimants) => {
                    self.conflicted.insert(*slot);
                    for loser in claimants.iter().skip(1) {
                        report
                            .conflicts
                            .push((loser.clone(), self.claimed_addr(slot)));
                    }
                }
                None => {
                    self.conflicted.remove(slot);
                }
            }
        }
        for slot in dirty {
            if let Err(error) = self.reconcile(slot, &mut apply, &mut report) {
                let addr = self.claimed_addr(&slot);
                let service = self.claims.get(&slot).and_then(|c| c.first());
                tracing::error!(
                    service = %service.map(ToString::to_string).unwrap_or_default(),
                    frontend = %addr,
                    scope = ?slot.0,
                    error = %error_chain(&error),
                    "lb: programming a frontend failed; keeping the old entry, will retry"
                );
                report.failed.push((addr, error));
                self.retry.insert(slot);
            }
        }
        report
    }

    /// Compiles one Service and updates its claims; every frontend it had or has is dirty.
    fn record(
        &mut self,
        key: &ObjectKey,
        entry: Option<&Arc<ServiceState>>,
        dirty: &mut BTreeSet<Slot>,
    ) {
        let compiled = entry.and_then(|e| compile_service(e, &self.node));
        let wants = compiled
            .as_ref()
            .map(|lb| wants(lb, self.algorithm))
            .unwrap_or_default();
        match compiled.as_ref().and_then(|lb| lb.health_check) {
            Some(check) => self.health.insert(key.clone(), check),
            None => self.health.remove(key),
        };
        if let Some(old) = self.services.remove(key) {
            for slot in old.slots() {
                if let Some(claimants) = self.claims.get_mut(slot) {
                    claimants.retain(|c| c != key);
                    if claimants.is_empty() {
                        self.claims.remove(slot);
                    }
                }
                dirty.insert(*slot);
            }
        }
        for (slot, _) in &wants {
            // Sorted, so the first claimant by namespace/name owns the frontend.
            let claimants = self.claims.entry(*slot).or_default();
            if let Err(at) = claimants.binary_search(key) {
                claimants.insert(at, key.clone());
            }
            dirty.insert(*slot);
        }
        if entry.is_some() {
            self.services.insert(key.clone(), Record { wants });
        }
    }

    /// Makes one frontend in the maps what its owner (the first claimant) wants.
    fn reconcile(
        &mut self,
        slot: Slot,
        apply: &mut impl FnMut(&MapOp) -> Result<(), LbError>,
        report: &mut SyncReport,
    ) -> Result<(), LbError> {
        let (scope, key) = slot;
        let owner = self.claims.get(&slot).and_then(|c| c.first()).cloned();
        let wanted = owner
            .as_ref()
            .and_then(|o| self.services.get(o))
            .and_then(|r| r.get(&slot))
            .cloned();
        let current = self.programmed.get(&slot).cloned();
        let Some((owner, wanted)) = owner.zip(wanted) else {
            if let Some(current) = current {
                apply(&MapOp::DeleteFrontend(scope, key))?;
                report.ops += 1;
                self.take_programmed(&slot);
                self.note_stale(&current, &[], report);
                self.sets.release(set_of(&current.value), apply, report)?;
            }
            return Ok(());
        };
        let pointed = current
            .as_ref()
            .map(|c| (c.value.service_id, c.value.revision));
        let set = self.sets.intern(
            &wanted.set,
            &wanted.backends,
            wanted.maglev,
            pointed,
            apply,
            report,
        )?;
        let value = Frontend {
            service_id: set.0,
            revision: set.1,
            backend_count: u32::try_from(self.sets.backends(set).len()).unwrap_or(u32::MAX),
            flags: wanted.flags,
            affinity_timeout_secs: wanted.affinity_timeout_secs,
        };
        if current.as_ref().is_some_and(|c| c.value == value) {
            if let Some(mut c) = self.take_programmed(&slot) {
                c.owner = owner;
                self.put_programmed(slot, c);
            }
            return Ok(());
        }
        let entry = Box::new(FrontendValue::new(value, self.sets.inline(set)));
        apply(&MapOp::PutFrontend(scope, key, entry))?;
        report.ops += 1;
        self.sets.retain(set);
        let programmed = Programmed {
            owner,
            addr: wanted.addr,
            protocol: wanted.protocol,
            value,
        };
        if let Some(old) = self.put_programmed(slot, programmed) {
            self.note_stale(&old, &wanted.backends, report);
            self.sets.release(set_of(&old.value), apply, report)?;
        }
        Ok(())
    }

    /// UDP backends of `old` that are not in `now`.
    fn note_stale(&self, old: &Programmed, now: &[LbBackend], report: &mut SyncReport) {
        if old.protocol != Protocol::Udp {
            return;
        }
        for b in self.sets.backends(set_of(&old.value)) {
            if !now.iter().any(|n| n.addr == b.addr) {
                report.stale_udp_backends.insert(b.addr);
            }
        }
    }

    fn claimed_addr(&self, slot: &Slot) -> SocketAddr {
        let from_claim = self
            .claims
            .get(slot)
            .and_then(|c| c.first())
            .and_then(|o| self.services.get(o))
            .and_then(|r| r.get(slot))
            .map(|w| w.addr);
        let from_map = self.programmed.get(slot).map(|p| p.addr);
        from_claim
            .or(from_map)
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
    }
}

/// A compiled Service's frontends, keyed by map slot.
fn wants(lb: &LbService, algorithm: Algorithm) -> Vec<(Slot, Wanted)> {
    let (flags, affinity_timeout_secs) = match lb.affinity {
        Some(t) => (
            FRONTEND_FLAG_AFFINITY,
            u32::try_from(t.as_secs()).unwrap_or(u32::MAX),
        ),
        None => (0, 0),
    };
    lb.frontends
        .iter()
        .map(|f| {
            let slot = (f.scope, FrontendKey::new(f.addr, proto(f.protocol)));
            let preserve = f.scope == Scope::Packet && lb.preserve_client_ip;
            let maglev = f.scope == Scope::Packet && algorithm == Algorithm::Maglev;
            let family = AddressFamily::of(&f.addr.ip());
            let wanted = Wanted {
                addr: f.addr,
                protocol: f.protocol,
                set: (
                    lb.key.clone(),
                    f.port_name.clone(),
                    f.protocol,
                    family,
                    f.view,
                ),
                backends: f.backends.clone(),
                flags: flags
                    | if preserve {
                        FRONTEND_FLAG_PRESERVE_CLIENT
                    } else {
                        0
                    }
                    | if maglev { FRONTEND_FLAG_MAGLEV } else { 0 },
                maglev,
                affinity_timeout_secs,
            };
            (slot, wanted)
        })
        .collect()
}

fn frontend_addr(key: &FrontendKey) -> Option<SocketAddr> {
    let ip = addr::ip_from_words(key.family, key.addr)?;
    Some(SocketAddr::new(ip, u16::from_be(key.port)))
}

/// An error and its sources (aya keeps the errno, e.g. "map full", in the source).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn set_of(frontend: &Frontend) -> SetRef {
    (frontend.service_id, frontend.revision)
}

fn slot_key(service_id: u32, revision: u32, slot: usize) -> BackendSlotKey {
    BackendSlotKey {
        service_id,
        revision,
        slot: u32::try_from(slot).unwrap_or(u32::MAX),
    }
}

fn proto(protocol: Protocol) -> u8 {
    match protocol {
        Protocol::Tcp => IPPROTO_TCP,
        // SCTP frontends are never compiled; UDP is the remaining case.
        Protocol::Udp | Protocol::Sctp => IPPROTO_UDP,
    }
}

#[cfg(test)]
mod tests;
