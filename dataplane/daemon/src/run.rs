//! `ferry run`: binds, loads, starts every task, and shuts down on SIGTERM/SIGINT.

use crate::admin::{self, Admin};
use crate::config::{Config, SourceConfig};
use crate::engines;
use crate::healthcheck;
use crate::pipeline::{self, ModelMetrics};
use crate::readiness::Readiness;
use anyhow::Context;
use ferry_dns::DnsMetrics;
use ferry_k8s::K8sMetrics;
use ferry_lb::LbMetrics;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

const SOURCE: &str = "manifests";
/// How long open admin connections get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

pub fn run(config: Config) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    tracing::info!(
        node = %config.node_name,
        node_ips = ?config.node_ips,
        admin = %config.admin_listen,
        lb = config.lb.is_some(),
        dns = config.dns.is_some(),
        ingress = config.ingress.is_some(),
        "ferry starting"
    );
    let mut registry = Registry::default();
    let k8s_metrics = K8sMetrics::register(registry.sub_registry_with_prefix("ferry_k8s"));
    let model_metrics = ModelMetrics::register(registry.sub_registry_with_prefix("ferry"));
    let lb_metrics = LbMetrics::register(registry.sub_registry_with_prefix("ferry_lb"));
    let dns_metrics = DnsMetrics::register(registry.sub_registry_with_prefix("ferry_dns"));

    let admin_listener = TcpListener::bind(config.admin_listen)
        .await
        .with_context(|| format!("admin: cannot listen on {}", config.admin_listen))?;

    let mut parts = vec![SOURCE];
    parts.extend(config.lb.is_some().then_some(engines::LB));
    parts.extend(config.dns.is_some().then_some(engines::DNS));
    parts.extend(config.ingress.is_some().then_some(engines::INGRESS));
    let readiness = Readiness::new(parts);
    let (snapshot_tx, snapshot_rx) = watch::channel(None);

    let shutdown = CancellationToken::new();
    let mut tasks = Vec::new();
    let mut lb = None;
    let (dns_serving_tx, dns_serving_rx) = watch::channel(false);
    let local_dns = config.local_dns().map(|steer| engines::LocalDnsFeed {
        steer,
        serving: dns_serving_rx,
    });
    if let Some(settings) = config.lb {
        let (health, health_task) = healthcheck::start();
        tasks.push(health_task);
        let node = (config.node_name.clone(), config.node_ips.clone());
        lb = Some(engines::start_lb(
            settings,
            node,
            snapshot_rx.clone(),
            local_dns,
            readiness.clone(),
            lb_metrics,
            health,
            shutdown.clone(),
        )?);
    }
    if let Some(dns) = config.dns {
        tasks.push(
            engines::start_dns(
                dns,
                snapshot_rx.clone(),
                readiness.clone(),
                dns_metrics,
                dns_serving_tx,
            )
            .await?,
        );
    }
    if let Some(ingress) = config.ingress {
        tasks.push(engines::start_ingress(
            ingress,
            snapshot_rx.clone(),
            readiness.clone(),
        ));
    }

    let (events_tx, events_rx) = mpsc::channel(64);
    let SourceConfig::Manifests(dir) = config.source;
    tasks.push(tokio::spawn(async move {
        if let Err(error) = ferry_k8s::manifest::watch(dir, k8s_metrics, events_tx).await {
            tracing::error!(%error, "manifest source stopped; serving the last good state");
        }
    }));
    tasks.push(tokio::spawn(pipeline::run(
        events_rx,
        snapshot_tx,
        readiness.clone(),
        SOURCE,
        model_metrics,
    )));

    let admin = Arc::new(Admin {
        readiness,
        registry,
        snapshots: snapshot_rx,
    });
    let admin_task = tokio::spawn(admin::serve(admin_listener, admin, shutdown.clone()));
    tracing::info!(admin = %config.admin_listen, "ferry running");

    let signal_name = wait_for_signal().await?;
    tracing::info!(signal = signal_name, "shutting down");
    shutdown.cancel();
    for task in &tasks {
        task.abort();
    }
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, admin_task).await;
    if let Some(lb) = lb {
        tokio::task::spawn_blocking(move || lb.stop()).await?;
    }
    tracing::info!("ferry stopped");
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<&'static str> {
    let mut terminate = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    Ok(tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    })
}
