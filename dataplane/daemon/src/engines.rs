//! Starts each enabled engine and feeds it every published snapshot.

use crate::config::LbSettings;
use crate::healthcheck::HealthChecks;
use crate::pipeline::Snapshot;
use crate::readiness::Readiness;
use anyhow::Context;
use ferry_dns::{DnsConfig, DnsMetrics, DnsServer};
use ferry_ingress::{IngressConfig, IngressEngine};
use ferry_lb::{LbEngine, LbMetrics};
use ferry_model::DesiredState;
use ferry_model::dns::DnsBuilder;
use ferry_model::lb::{LocalDns, NodeContext};
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

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

/// The running LB: a thread that programs the maps for every snapshot and runs the engine's
/// housekeeping between them (map updates are syscalls, kept off the async workers), and what
/// it needs at shutdown.
#[derive(Debug)]
pub struct LbHandle {
    thread: std::thread::JoinHandle<()>,
    pub settings: LbSettings,
}

impl LbHandle {
    /// Waits for the LB thread to finish after `shutdown` was cancelled, then removes every
    /// pin when `--lb-cleanup` asked for it (by default the datapath outlives the daemon).
    pub fn stop(self) {
        if self.thread.join().is_err() {
            tracing::error!("lb: the sync thread panicked");
        }
        if self.settings.cleanup_on_exit {
            match ferry_lb::cleanup(&self.settings.engine.pin_root) {
                Ok(removed) => tracing::info!(removed = removed.len(), "lb: cleaned up"),
                Err(error) => tracing::error!(%error, "lb: cleanup failed"),
            }
        }
    }
}

/// Node-local DNS as the LB sees it: what to steer where, and whether this node's DNS answers.
#[derive(Debug)]
pub struct LocalDnsFeed {
    pub steer: LocalDns,
    pub serving: watch::Receiver<bool>,
}

impl LocalDnsFeed {
    /// The steering to program now: only while the local DNS answers.
    fn current(&mut self) -> Option<LocalDns> {
        (*self.serving.borrow_and_update()).then(|| self.steer.clone())
    }
}

/// Resolves when the local DNS starts or stops answering; never without a feed. A feed whose
/// DNS is gone is dropped, which hands the DNS Service back to its endpoints.
async fn serving_changed(feed: &mut Option<LocalDnsFeed>) {
    match feed {
        Some(f) => {
            if f.serving.changed().await.is_err() {
                *feed = None;
            }
        }
        None => std::future::pending().await,
    }
}

/// Loads and attaches the load balancer before anything is served, so a kernel that refuses
/// the programs stops the daemon at start; then syncs the maps with every snapshot, and with
/// every change of the local DNS's state when it steers the cluster DNS Service there.
#[allow(clippy::too_many_arguments)]
pub fn start_lb(
    settings: LbSettings,
    node: (String, Vec<IpAddr>),
    snapshots: watch::Receiver<Snapshot>,
    local_dns: Option<LocalDnsFeed>,
    readiness: Readiness,
    metrics: LbMetrics,
    health: HealthChecks,
    shutdown: CancellationToken,
) -> anyhow::Result<LbHandle> {
    let (name, ips) = node;
    let initial = NodeContext {
        name: name.clone(),
        ips: ips.clone(),
        zone: None,
        local_dns: None,
    };
    let mut engine = LbEngine::start(&settings.engine, initial, &metrics)
        .context("lb: starting the eBPF load balancer (needs root; --no-lb turns it off)")?;
    let runtime = tokio::runtime::Handle::current();
    let (mut snapshots, mut local_dns) = (snapshots, local_dns);
    let keeps_pins = !settings.cleanup_on_exit;
    let thread = std::thread::Builder::new()
        .name("ferry-lb".into())
        .spawn(move || {
            let mut maintenance = tokio::time::Instant::now() + LbEngine::MAINTENANCE_INTERVAL;
            let mut last: Option<Arc<DesiredState>> = None;
            let mut steering = false;
            let sync = |engine: &mut LbEngine, state: &DesiredState, dns: Option<LocalDns>| {
                let node = NodeContext::from_state(&name, &ips, state).with_local_dns(dns);
                let report = engine.sync(state, &node, &metrics);
                log_report(&report);
                health.publish(engine.state().health_checks());
            };
            loop {
                if let Some(state) = snapshots.borrow_and_update().clone() {
                    last = Some(state);
                }
                let dns = local_dns.as_mut().and_then(LocalDnsFeed::current);
                if let Some(state) = &last {
                    if steering != dns.is_some() {
                        tracing::info!(local = dns.is_some(), "lb: node-local DNS steering");
                    }
                    steering = dns.is_some();
                    sync(&mut engine, state, dns);
                    readiness.set_ready(LB);
                }
                // Wait for the next change, doing the engine's housekeeping meanwhile.
                loop {
                    let next = runtime.block_on(async {
                        tokio::select! {
                            // Shutdown first: at exit the DNS goes away at the same moment.
                            biased;
                            () = shutdown.cancelled() => Some(false),
                            changed = snapshots.changed() => Some(changed.is_ok()),
                            () = serving_changed(&mut local_dns) => Some(true),
                            () = tokio::time::sleep_until(maintenance) => None,
                        }
                    });
                    match next {
                        Some(true) => break,
                        Some(false) => {
                            // The pinned datapath outlives the daemon: the DNS Service must not
                            // stay pointed at a server that is going away.
                            if let (true, true, Some(state)) = (steering, keeps_pins, &last) {
                                sync(&mut engine, state, None);
                                tracing::info!("lb: cluster DNS handed back to its endpoints");
                            }
                            return;
                        }
                        None => {
                            engine.maintain();
                            maintenance =
                                tokio::time::Instant::now() + LbEngine::MAINTENANCE_INTERVAL;
                        }
                    }
                }
            }
        })
        .context("lb: starting the sync thread")?;
    Ok(LbHandle { thread, settings })
}

fn log_report(report: &ferry_lb::SyncReport) {
    for (service, addr) in &report.conflicts {
        tracing::warn!(%service, %addr, "lb: frontend already used by another Service; not programmed");
    }
    if report.services_changed > 0 {
        tracing::debug!(
            services = report.services_changed,
            ops = report.ops,
            "lb: maps synced"
        );
    }
}

/// Binds the DNS listeners before anything is served (a taken port stops the daemon at
/// start), then compiles every snapshot into the zone table and publishes it: `dns` is ready
/// once the listeners are bound and the first table is served. The task owns the server;
/// aborting it closes the listeners.
pub async fn start_dns(
    config: DnsConfig,
    snapshots: watch::Receiver<Snapshot>,
    readiness: Readiness,
    metrics: DnsMetrics,
    serving: watch::Sender<bool>,
) -> anyhow::Result<JoinHandle<()>> {
    if config.listen.is_empty() {
        tracing::info!("dns: no --dns-listen address; cluster DNS is not served");
        return Ok(tokio::spawn(follow(snapshots, readiness, DNS, |_| {})));
    }
    // The SOA serial starts at the clock, so it grows across restarts.
    let serial = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |since| {
            u32::try_from(since.as_secs()).unwrap_or(u32::MAX)
        });
    let mut builder = DnsBuilder::new(&config.cluster_domain, serial)
        .with_endpoint_pod_names(config.endpoint_pod_names);
    let server = DnsServer::start(config, metrics).await?;
    Ok(tokio::spawn(follow(
        snapshots,
        readiness,
        DNS,
        move |state| {
            if builder.update(&state) || !server.is_serving() {
                server.publish(builder.table());
            }
            serving.send_if_modified(|s| !std::mem::replace(s, true));
        },
    )))
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
