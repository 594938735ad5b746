//! What a source tells the model.

use ferry_model::{Object, ObjectRef};

/// One object change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Apply(Object),
    Delete(ObjectRef),
}

/// A source's output, in order. `Synced` is a complete listing that replaces everything the
/// source said before (a first sync, a relist or a full rescan); `Changed` is a batch of
/// changes to apply as one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceEvent {
    Synced(Vec<Object>),
    Changed(Vec<Change>),
}
