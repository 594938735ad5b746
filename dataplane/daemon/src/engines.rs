//! Starts each enabled engine and feeds it every published snapshot.

use crate::config::LbSettings;
use crate::pipeline::Snapshot;
use crate::readiness::Readiness;
use anyhow::Context;
use ferry_dns::{DnsConfig, DnsEngine};
use ferry_ingress::{IngressConfig, IngressEngine};
use ferry_model::DesiredState;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub const LB: &str = "lb";
pub const DNS: &str = "dns";
pub const INGRESS: &str = "ingress";

/// Calls `apply` with every snapshot from the first sync on, then marks `part` ready.
async fn follow(
    mut snapshots: watch::Receiver<Snapshot>,
    readiness: Readiness,
    part: &'static str,
    mut apply: impl FnMut(Arc<DesiredState>),
) {
    loop {
        let snapshot = snapshots.borrow_and_update().clone();
        if let Some(state) = snapshot {
            apply(state);
            readiness.set_ready(part);
        }
        if snapshots.changed().await.is_err() {
            return;
        }
    }
}

/// Loads every BPF program through the kernel verifier before anything is served, so a
/// kernel that refuses them stops the daemon at start. Map programming and attachment come
/// with the load-balancing issue.
pub fn start_lb(
    settings: LbSettings,
    snapshots: watch::Receiver<Snapshot>,
    readiness: Readiness,
) -> anyhow::Result<JoinHandle<()>> {
    let mut ebpf = ferry_lb::load().context("lb: loading the BPF object")?;
    let programs = ferry_lb::load_all_programs(&mut ebpf)
        .context("lb: loading BPF programs (needs root or CAP_BPF; --no-lb turns the LB off)")?;
    tracing::info!(
        programs = programs.len(),
        cgroup = %settings.cgroup.display(),
        "lb: BPF programs verified and loaded; attachment and map sync are not implemented yet"
    );
    Ok(tokio::spawn(follow(
        snapshots,
        readiness,
        LB,
        move |state| {
            let _loaded = &ebpf;
            tracing::debug!(services = state.services.len(), "lb: snapshot received");
        },
    )))
}

pub fn start_dns(
    config: DnsConfig,
    snapshots: watch::Receiver<Snapshot>,
    readiness: Readiness,
) -> JoinHandle<()> {
    if !config.listen.is_empty() {
        tracing::warn!(listen = ?config.listen, "dns: serving is not implemented yet; not listening");
    }
    let mut engine = DnsEngine::new(config);
    tokio::spawn(follow(snapshots, readiness, DNS, move |state| {
        engine.update(state);
    }))
}

pub fn start_ingress(
    config: IngressConfig,
    snapshots: watch::Receiver<Snapshot>,
    readiness: Readiness,
) -> JoinHandle<()> {
    if config.http.is_some() || config.https.is_some() {
        tracing::warn!("ingress: routing is not implemented yet; not listening");
    }
    let mut engine = IngressEngine::new(config);
    tokio::spawn(follow(snapshots, readiness, INGRESS, move |state| {
        engine.update(state);
    }))
}
