//! A problem found in a manifest file, named by file, document and object.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Not served (an unknown kind): logged, not counted as invalid.
    Warning,
    /// Invalid: not served, counted in `ferry_k8s_invalid_objects_total`, fails `ferry check`.
    Error,
}

/// Where in a file: the 1-based document and, inside a `kind: List`, the 1-based item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    pub document: usize,
    pub item: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "document {}", self.document)?;
        if let Some(item) = self.item {
            write!(f, " item {item}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    pub severity: Severity,
    pub file: PathBuf,
    pub location: Option<Location>,
    /// `Kind ns/name`, when the object could be identified.
    pub object: Option<String>,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(location) = &self.location {
            write!(f, ": {location}")?;
        }
        if let Some(object) = &self.object {
            write!(f, ": {object}")?;
        }
        write!(f, ": {}", self.reason)
    }
}
