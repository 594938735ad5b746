//! Drives a [`ManifestSet`] from inotify events and a periodic rescan.

use super::{ManifestSet, Problem, Rescan, Severity};
use crate::{K8sMetrics, SourceEvent};
use notify::{RecursiveMode, Watcher};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Quiet time after a file event before rescanning, so one save is one rescan.
const DEBOUNCE: Duration = Duration::from_millis(25);
/// A rescan even without events: catches what inotify cannot see (e.g. NFS). kubelet checks
/// its static pod manifests as often (`--file-check-frequency`); a rescan of 20,000 files
/// costs about 40 ms of CPU.
const RESYNC: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest directory {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot watch manifest directory {path}: {source}")]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
}

/// Reads `root`, sends one `Synced` with everything, then a `Changed` batch per change on disk.
/// Returns when the receiver is dropped; fails only if the folder cannot be read or watched at
/// start. Later read failures keep the last good objects and are retried.
pub async fn watch(
    root: PathBuf,
    metrics: K8sMetrics,
    events: mpsc::Sender<SourceEvent>,
) -> Result<(), ManifestError> {
    let (notify_tx, mut notify_rx) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = notify_tx.send(());
        }
    })
    .map_err(|source| ManifestError::Watch {
        path: root.clone(),
        source,
    })?;
    watcher
        .watch(&root, RecursiveMode::Recursive)
        .map_err(|source| ManifestError::Watch {
            path: root.clone(),
            source,
        })?;

    let (mut set, rescan) = match rescan_blocking(ManifestSet::new(root), &metrics).await {
        (set, Ok(rescan)) => (set, rescan),
        (_, Err(error)) => return Err(error),
    };
    tracing::info!(
        dir = %set.root().display(),
        files = rescan.files_read,
        objects = rescan.changes.len(),
        "manifests read"
    );
    if events
        .send(SourceEvent::Synced(set.objects()))
        .await
        .is_err()
    {
        return Ok(());
    }

    loop {
        tokio::select! {
            event = notify_rx.recv() => {
                if event.is_none() {
                    return Ok(());
                }
                // Let a burst of writes settle, then drain what it queued.
                tokio::time::sleep(DEBOUNCE).await;
                while notify_rx.try_recv().is_ok() {}
            }
            () = tokio::time::sleep(RESYNC) => {}
            () = events.closed() => return Ok(()),
        }
        let rescan;
        (set, rescan) = match rescan_blocking(set, &metrics).await {
            (set, Ok(rescan)) => (set, rescan),
            (set, Err(error)) => {
                // The folder vanished or became unreadable: keep serving what we have and
                // try again at the next event or resync.
                tracing::error!(%error, "manifest rescan failed; keeping the last good objects");
                (set, Rescan::default())
            }
        };
        if !rescan.changes.is_empty() {
            tracing::info!(
                files = rescan.files_read,
                changes = rescan.changes.len(),
                "manifests changed"
            );
            if events
                .send(SourceEvent::Changed(rescan.changes))
                .await
                .is_err()
            {
                return Ok(());
            }
        }
    }
}

/// Rescans on the blocking pool; the set comes back whatever the outcome.
async fn rescan_blocking(
    mut set: ManifestSet,
    metrics: &K8sMetrics,
) -> (ManifestSet, Result<Rescan, ManifestError>) {
    let started = Instant::now();
    let (set, result) = tokio::task::spawn_blocking(move || {
        let result = set.rescan();
        (set, result)
    })
    .await
    .expect("manifest rescan panicked");
    let rescan = match result {
        Ok(rescan) => rescan,
        Err(source) => {
            let path = set.root().to_path_buf();
            return (set, Err(ManifestError::Read { path, source }));
        }
    };
    metrics
        .sync_duration
        .observe(started.elapsed().as_secs_f64());
    report(&rescan.problems, metrics);
    let standing = set
        .problems()
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    metrics
        .current_problems
        .set(i64::try_from(standing).unwrap_or(i64::MAX));
    (set, Ok(rescan))
}

fn report(problems: &[Problem], metrics: &K8sMetrics) {
    for problem in problems {
        match problem.severity {
            Severity::Error => {
                metrics.invalid_objects.inc();
                tracing::error!(
                    file = %problem.file.display(),
                    "invalid manifest: {problem}"
                );
            }
            Severity::Warning => {
                tracing::warn!(file = %problem.file.display(), "skipped: {problem}");
            }
        }
    }
}
