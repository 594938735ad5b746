//! The one error a conversion can give: this object is invalid, and why.

use std::fmt;

/// An object that cannot be served, named by kind, namespace and name where it has them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InvalidObject {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub reason: String,
}

impl InvalidObject {
    pub fn new(kind: &str, namespace: Option<&str>, name: Option<&str>, reason: String) -> Self {
        Self {
            kind: kind.to_string(),
            namespace: namespace.map(str::to_string),
            name: name.map(str::to_string),
            reason,
        }
    }

    /// `Kind ns/name`, `Kind name`, or `(unnamed)` in place of a missing name.
    pub fn object(&self) -> String {
        match (&self.namespace, &self.name) {
            (Some(ns), Some(name)) => format!("{} {ns}/{name}", self.kind),
            (None, Some(name)) => format!("{} {name}", self.kind),
            (Some(ns), None) => format!("{} {ns}/(unnamed)", self.kind),
            _ => format!("{} (unnamed)", self.kind),
        }
    }
}

impl fmt::Display for InvalidObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.object(), self.reason)
    }
}
