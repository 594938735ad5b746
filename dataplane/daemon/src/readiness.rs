//! What `/readyz` waits for: every source's first sync and every enabled subsystem serving.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Clone)]
pub struct Readiness {
    parts: Arc<[(&'static str, AtomicBool)]>,
}

impl Readiness {
    pub fn new(parts: impl IntoIterator<Item = &'static str>) -> Self {
        Self {
            parts: parts
                .into_iter()
                .map(|name| (name, AtomicBool::new(false)))
                .collect(),
        }
    }

    /// Marks one part ready; it stays ready.
    pub fn set_ready(&self, part: &str) {
        let found = self.parts.iter().find(|(name, _)| *name == part);
        debug_assert!(found.is_some(), "unknown readiness part {part}");
        if let Some((_, ready)) = found
            && !ready.swap(true, Ordering::Release)
        {
            tracing::info!(part, "ready");
            if self.waiting().is_empty() {
                crate::memory::release_free_memory();
            }
        }
    }

    /// The parts not ready yet; empty when ready.
    pub fn waiting(&self) -> Vec<&'static str> {
        self.parts
            .iter()
            .filter(|(_, ready)| !ready.load(Ordering::Acquire))
            .map(|(name, _)| *name)
            .collect()
    }
}
