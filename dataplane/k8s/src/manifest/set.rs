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
use std::sync::Arc;

/// A file's path, shared by every table that names the file.
type FilePath = Arc<Path>;

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
    objects: FileObjects,
    problems: Vec<Problem>,
}

/// One file's objects, sorted by reference. Most files hold one object or a few, so a sorted
/// list beats a tree node per file; the objects themselves are shared with the model.
#[derive(Debug, Clone, Default)]
struct FileObjects(Vec<(ObjectRef, Object)>);

impl FileObjects {
    fn get(&self, object_ref: &ObjectRef) -> Option<&Object> {
        let i = self.0.binary_search_by(|(r, _)| r.cmp(object_ref)).ok()?;
        Some(&self.0[i].1)
    }

    fn insert(&mut self, object_ref: ObjectRef, object: Object) {
        match self.0.binary_search_by(|(r, _)| r.cmp(&object_ref)) {
            Ok(i) => self.0[i].1 = object,
            Err(i) => self.0.insert(i, (object_ref, object)),
        }
    }

    fn refs(&self) -> impl Iterator<Item = &ObjectRef> {
        self.0.iter().map(|(r, _)| r)
    }

    fn objects(&self) -> impl Iterator<Item = &Object> {
        self.0.iter().map(|(_, o)| o)
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The files declaring one object, sorted, and the one whose version is served.
#[derive(Debug, Default)]
struct Declared {
    files: Vec<FilePath>,
    owner: Option<FilePath>,
}

/// A manifest folder's objects. Each object belongs to the first file that declared it; a later
/// file declaring the same object is reported as a duplicate until the owner drops it.
#[derive(Debug)]
pub struct ManifestSet {
    root: PathBuf,
    /// Hashed for the rescans' lookups (see [`manifest_files`]).
    files: HashMap<FilePath, FileEntry>,
    /// Object -> the files declaring it, and the owner.
    declared: HashMap<ObjectRef, Declared>,
}

impl ManifestSet {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            files: HashMap::new(),
            declared: HashMap::new(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The objects served now, in object order.
    pub fn objects(&self) -> Vec<Object> {
        let mut out = Vec::with_capacity(self.declared.len());
        for (path, entry) in &self.files {
            for (object_ref, object) in &entry.objects.0 {
                if self.owner(object_ref) == Some(path) {
                    out.push((object_ref, object));
                }
            }
        }
        out.sort_unstable_by_key(|(object_ref, _)| *object_ref);
        out.into_iter().map(|(_, object)| object.clone()).collect()
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
        let mut parsed: Vec<(FilePath, Stamp, FileParse)> = Vec::new();
        for (path, stamp) in &listed {
            if self
                .files
                .get(path.as_path())
                .is_some_and(|f| f.stamp == *stamp)
            {
                continue;
            }
            let parse = match std::fs::read(path) {
                Ok(bytes) => parse_file(path, &bytes),
                Err(e) => FileParse::Unreadable(format!("cannot read: {e}")),
            };
            parsed.push((FilePath::from(path.as_path()), *stamp, parse));
        }
        // In path order, so problems come out in the same order whatever the listing's.
        parsed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        rescan.files_read = parsed.len();
        let removed: Vec<FilePath> = self
            .files
            .keys()
            .filter(|p| !listed.contains_key(&***p))
            .cloned()
            .collect();

        // Objects whose served version may change, with that version now.
        let mut touched: BTreeSet<ObjectRef> = BTreeSet::new();
        for path in &removed {
            touched.extend(self.files[path].objects.refs().cloned());
        }
        let mut updates = Vec::with_capacity(parsed.len());
        for (path, stamp, parse) in parsed {
            let old = self.files.get(&path).map(|f| &f.objects);
            let (objects, problems) = self.file_objects(&path, parse, old);
            touched.extend(old.into_iter().flat_map(|o| o.refs().cloned()));
            touched.extend(objects.refs().cloned());
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
            for object_ref in entry.objects.refs() {
                self.undeclare(object_ref, &path);
            }
        }
        for (path, entry) in updates {
            if let Some(old) = self.files.remove(&path) {
                for object_ref in old.objects.refs() {
                    self.undeclare(object_ref, &path);
                }
            }
            for object_ref in entry.objects.refs() {
                let files = &mut self.declared.entry(object_ref.clone()).or_default().files;
                if let Err(i) = files.binary_search(&path) {
                    files.insert(i, path.clone());
                }
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
        old: Option<&FileObjects>,
    ) -> (FileObjects, Vec<Problem>) {
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
        let mut objects = FileObjects::default();
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

    fn owner(&self, object_ref: &ObjectRef) -> Option<&FilePath> {
        self.declared.get(object_ref)?.owner.as_ref()
    }

    fn served(&self, object_ref: &ObjectRef) -> Option<&Object> {
        let path = self.owner(object_ref)?;
        self.files.get(path)?.objects.get(object_ref)
    }

    /// Keeps the current owner while it still declares the object, else the first declaring
    /// file; an object no file declares any more is forgotten.
    fn elect_owner(&mut self, object_ref: &ObjectRef) {
        let Some(declared) = self.declared.get_mut(object_ref) else {
            return;
        };
        let keep = declared
            .owner
            .as_ref()
            .is_some_and(|o| declared.files.contains(o));
        if keep {
            return;
        }
        match declared.files.first() {
            Some(first) => declared.owner = Some(first.clone()),
            None => {
                self.declared.remove(object_ref);
            }
        }
    }

    fn duplicates(&self, object_ref: &ObjectRef) -> Vec<Problem> {
        let Some(Declared {
            files,
            owner: Some(owner),
        }) = self.declared.get(object_ref)
        else {
            return Vec::new();
        };
        files
            .iter()
            .filter(|p| *p != owner)
            .map(|p| Problem {
                severity: Severity::Error,
                file: p.to_path_buf(),
                location: None,
                object: Some(object_ref.to_string()),
                reason: format!("duplicate object: already defined in {}", owner.display()),
            })
            .collect()
    }

    /// Drops `path` from the object's declaring files; [`Self::elect_owner`] then settles
    /// the owner (and forgets an object nobody declares).
    fn undeclare(&mut self, object_ref: &ObjectRef, path: &Path) {
        if let Some(declared) = self.declared.get_mut(object_ref) {
            declared.files.retain(|p| **p != *path);
        }
    }
}

/// The previous version of the object an invalid document names, if the file had one.
fn last_good<'a>(old: &'a FileObjects, invalid: &crate::InvalidObject) -> Option<&'a Object> {
    let name = invalid.name.as_deref()?;
    old.objects().find(|o| {
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
