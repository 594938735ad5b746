//! The objects of a manifest folder, kept per file and diffed on every rescan.

use super::parse::{FileParse, parse_file};
use super::walk::{Stamp, manifest_files};
use super::{Location, Problem, Severity};
use crate::Change;
use crate::convert::Converted;
use ferry_model::{Object, ObjectRef};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};

/// What one rescan found.
#[derive(Debug, Default)]
pub struct Rescan {
    /// Object changes since the previous rescan (all objects on the first one).
    pub changes: Vec<Change>,
    /// Problems in the files read by this rescan, and duplicates it discovered.
    pub problems: Vec<Problem>,
    pub files_read: usize,
}

#[derive(Debug)]
struct FileEntry {
    stamp: Stamp,
    objects: BTreeMap<ObjectRef, Object>,
    problems: Vec<Problem>,
}

/// A manifest folder's objects. Each object belongs to the first file that declared it; a later
/// file declaring the same object is reported as a duplicate until the owner drops it.
#[derive(Debug)]
pub struct ManifestSet {
    root: PathBuf,
    files: BTreeMap<PathBuf, FileEntry>,
    /// Object -> the files declaring it.
    declared: HashMap<ObjectRef, BTreeSet<PathBuf>>,
    /// Object -> the file whose version is served.
    owner: HashMap<ObjectRef, PathBuf>,
}

impl ManifestSet {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            files: BTreeMap::new(),
            declared: HashMap::new(),
            owner: HashMap::new(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The objects served now, in file then object order.
    pub fn objects(&self) -> Vec<Object> {
        let mut out = Vec::with_capacity(self.owner.len());
        for (path, entry) in &self.files {
            for (object_ref, object) in &entry.objects {
                if self.owner.get(object_ref) == Some(path) {
                    out.push(object.clone());
                }
            }
        }
        out
    }

    /// Every standing problem: per-file ones and duplicates.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out: Vec<Problem> = self
            .files
            .values()
            .flat_map(|f| f.problems.clone())
            .collect();
        for object_ref in self.declared.keys() {
            out.extend(self.duplicates(object_ref));
        }
        out.sort();
        out
    }

    /// Reads what changed on disk and returns the object changes, as one batch.
    pub fn rescan(&mut self) -> io::Result<Rescan> {
        let listed = manifest_files(&self.root)?;
        let mut rescan = Rescan::default();

        // Parse every new or changed file before touching any state.
        let mut parsed: Vec<(PathBuf, Stamp, FileParse)> = Vec::new();
        for (path, stamp) in &listed {
            if self.files.get(path).is_some_and(|f| f.stamp == *stamp) {
                continue;
            }
            let parse = match std::fs::read(path) {
                Ok(bytes) => parse_file(path, &bytes),
                Err(e) => FileParse::Unreadable(format!("cannot read: {e}")),
            };
            parsed.push((path.clone(), *stamp, parse));
        }
        rescan.files_read = parsed.len();
        let removed: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|p| !listed.contains_key(*p))
            .cloned()
            .collect();

        // Objects whose served version may change, with that version now.
        let mut touched: BTreeSet<ObjectRef> = BTreeSet::new();
        for path in &removed {
            touched.extend(self.files[path].objects.keys().cloned());
        }
        let mut updates = Vec::with_capacity(parsed.len());
        for (path, stamp, parse) in parsed {
            let old = self.files.get(&path).map(|f| &f.objects);
            let (objects, problems) = self.file_objects(&path, parse, old);
            touched.extend(old.into_iter().flat_map(|o| o.keys().cloned()));
            touched.extend(objects.keys().cloned());
            rescan.problems.extend(problems.iter().cloned());
            updates.push((
                path,
                FileEntry {
                    stamp,
                    objects,
                    problems,
                },
            ));
        }
        let before: Vec<(ObjectRef, Option<Object>)> = touched
            .iter()
            .map(|r| (r.clone(), self.served(r).cloned()))
            .collect();

        for path in removed {
            let entry = self.files.remove(&path).expect("listed above");
            for object_ref in entry.objects.keys() {
                self.undeclare(object_ref, &path);
            }
        }
        for (path, entry) in updates {
            if let Some(old) = self.files.remove(&path) {
                for object_ref in old.objects.keys() {
                    self.undeclare(object_ref, &path);
                }
            }
            for object_ref in entry.objects.keys() {
                self.declared
                    .entry(object_ref.clone())
                    .or_default()
                    .insert(path.clone());
            }
            self.files.insert(path, entry);
        }

        for (object_ref, old) in before {
            self.elect_owner(&object_ref);
            rescan.problems.extend(self.duplicates(&object_ref));
            match (old, self.served(&object_ref)) {
                (None, None) => {}
                (Some(_), None) => rescan.changes.push(Change::Delete(object_ref)),
                (old, Some(new)) => {
                    if old.as_ref() != Some(new) {
                        rescan.changes.push(Change::Apply(new.clone()));
                    }
                }
            }
        }
        Ok(rescan)
    }

    /// The objects a freshly parsed file contributes, and its problems. A file that does not
    /// parse keeps all its previous objects; an invalid object keeps its previous version.
    fn file_objects(
        &self,
        path: &Path,
        parse: FileParse,
        old: Option<&BTreeMap<ObjectRef, Object>>,
    ) -> (BTreeMap<ObjectRef, Object>, Vec<Problem>) {
        let problem = |severity, location, object, reason| Problem {
            severity,
            file: path.to_path_buf(),
            location,
            object,
            reason,
        };
        let documents = match parse {
            FileParse::Unreadable(reason) => {
                let kept = old.cloned().unwrap_or_default();
                let reason = if kept.is_empty() {
                    reason
                } else {
                    format!("{reason} (keeping its {} last good objects)", kept.len())
                };
                return (kept, vec![problem(Severity::Error, None, None, reason)]);
            }
            FileParse::Documents(documents) => documents,
        };
        let mut objects = BTreeMap::new();
        let mut problems = Vec::new();
        let mut seen_here: BTreeMap<ObjectRef, Location> = BTreeMap::new();
        for document in documents {
            let location = Some(document.location);
            match document.outcome {
                Ok(Converted::Object(object)) => {
                    let object_ref = object.object_ref();
                    if let Some(first) = seen_here.insert(object_ref.clone(), document.location) {
                        problems.push(problem(
                            Severity::Error,
                            location,
                            Some(object_ref.to_string()),
                            format!("duplicate object: already defined in {first} of this file"),
                        ));
                        seen_here.insert(object_ref, first);
                        continue;
                    }
                    objects.insert(object_ref, object);
                }
                Ok(Converted::Ignored(ignored)) => {
                    if ignored.warn {
                        problems.push(problem(
                            Severity::Warning,
                            location,
                            Some(ignored.object),
                            ignored.reason,
                        ));
                    }
                }
                Err(invalid) => {
                    let mut reason = invalid.reason.clone();
                    if let Some(last_good) = old.and_then(|o| last_good(o, &invalid)) {
                        reason.push_str(" (keeping its last good version)");
                        objects.insert(last_good.object_ref(), last_good.clone());
                    }
                    let object = (!invalid.kind.is_empty()).then(|| invalid.object());
                    problems.push(problem(Severity::Error, location, object, reason));
                }
            }
        }
        (objects, problems)
    }

    fn served(&self, object_ref: &ObjectRef) -> Option<&Object> {
        let path = self.owner.get(object_ref)?;
        self.files.get(path)?.objects.get(object_ref)
    }

    /// Keeps the current owner while it still declares the object, else the first declaring file.
    fn elect_owner(&mut self, object_ref: &ObjectRef) {
        let declaring = self.declared.get(object_ref);
        let keep = self
            .owner
            .get(object_ref)
            .is_some_and(|o| declaring.is_some_and(|d| d.contains(o)));
        if keep {
            return;
        }
        match declaring.and_then(|d| d.first()) {
            Some(first) => {
                self.owner.insert(object_ref.clone(), first.clone());
            }
            None => {
                self.owner.remove(object_ref);
            }
        }
    }

    fn duplicates(&self, object_ref: &ObjectRef) -> Vec<Problem> {
        let (Some(declaring), Some(owner)) =
            (self.declared.get(object_ref), self.owner.get(object_ref))
        else {
            return Vec::new();
        };
        declaring
            .iter()
            .filter(|p| *p != owner)
            .map(|p| Problem {
                severity: Severity::Error,
                file: p.clone(),
                location: None,
                object: Some(object_ref.to_string()),
                reason: format!("duplicate object: already defined in {}", owner.display()),
            })
            .collect()
    }

    fn undeclare(&mut self, object_ref: &ObjectRef, path: &Path) {
        if let Some(files) = self.declared.get_mut(object_ref) {
            files.remove(path);
            if files.is_empty() {
                self.declared.remove(object_ref);
            }
        }
    }
}

/// The previous version of the object an invalid document names, if the file had one.
fn last_good<'a>(
    old: &'a BTreeMap<ObjectRef, Object>,
    invalid: &crate::InvalidObject,
) -> Option<&'a Object> {
    let name = invalid.name.as_deref()?;
    old.values().find(|o| {
        let key = o.key();
        o.kind().as_str() == invalid.kind
            && key.name == name
            && (key.namespace.is_empty()
                || Some(key.namespace.as_str())
                    == Some(
                        invalid
                            .namespace
                            .as_deref()
                            .unwrap_or(crate::convert::DEFAULT_NAMESPACE),
                    ))
    })
}
