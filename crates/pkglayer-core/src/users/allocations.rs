//! The allocation file: every user and group ID this machine gave out, by name, so a name gets
//! the same ID again and no other name ever gets it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::{Kind, ids_of};

/// The IDs this machine gave out, by name; kept in a small text file (`u NAME ID` / `g NAME ID`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Allocations {
    path: PathBuf,
    ids: BTreeMap<(Kind, String), u32>,
    /// Whether anything was recorded since loading (only then is the file written).
    changed: bool,
}

impl Allocations {
    /// Reads the file at `path`; a missing file is an empty one (nothing given out yet).
    pub(crate) fn load(path: &Path) -> Result<Self> {
        let mut ids = BTreeMap::new();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                for (number, line) in text.lines().enumerate() {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let (kind, name, id) = match fields[..] {
                        ["u", name, id] => (Kind::User, name, id),
                        ["g", name, id] => (Kind::Group, name, id),
                        [] => continue,
                        _ => bail!(
                            "{}:{}: expected `u NAME ID` or `g NAME ID`",
                            path.display(),
                            number + 1
                        ),
                    };
                    let id = id.parse().with_context(|| {
                        format!("{}:{}: {id} is not an ID", path.display(), number + 1)
                    })?;
                    ids.insert((kind, name.to_string()), id);
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err).with_context(|| format!("Reading {}", path.display())),
        }
        Ok(Allocations {
            path: path.to_path_buf(),
            ids,
            changed: false,
        })
    }

    /// Where the file is (named in errors that ask the user to edit it).
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The ID this machine gave `name`, if any.
    pub(super) fn get(&self, kind: Kind, name: &str) -> Option<u32> {
        self.ids.get(&(kind, name.to_string())).copied()
    }

    /// IDs given to names of `kind`.
    pub(super) fn taken(&self, kind: Kind) -> BTreeSet<u32> {
        ids_of(&self.ids, kind)
    }

    /// Records `name` = `id` unless the name has an ID already.
    pub(super) fn record(&mut self, kind: Kind, name: &str, id: u32) {
        if let std::collections::btree_map::Entry::Vacant(entry) =
            self.ids.entry((kind, name.to_string()))
        {
            entry.insert(id);
            self.changed = true;
        }
    }

    /// The file's text: `u NAME ID` / `g NAME ID` lines.
    pub(super) fn text(&self) -> String {
        self.ids
            .iter()
            .map(|((kind, name), id)| format!("{} {name} {id}\n", kind.letter()))
            .collect()
    }

    /// Writes the file atomically (a temporary file renamed over it), if anything was recorded.
    pub(crate) fn save(&self) -> Result<()> {
        if !self.changed {
            return Ok(());
        }
        let dir = self
            .path
            .parent()
            .context("the allocation file has a folder")?;
        std::fs::create_dir_all(dir).with_context(|| format!("Creating {}", dir.display()))?;
        let temporary = self.path.with_extension("tmp");
        std::fs::write(&temporary, self.text())
            .with_context(|| format!("Writing {}", temporary.display()))?;
        std::fs::rename(&temporary, &self.path)
            .with_context(|| format!("Writing {}", self.path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_only_what_was_recorded_and_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/ids");
        let mut allocations = Allocations::load(&path).unwrap();
        allocations.save().unwrap();
        assert!(!path.exists(), "nothing recorded, nothing written");

        allocations.record(Kind::User, "alice", 998);
        allocations.record(Kind::Group, "alice", 998);
        // A name keeps its first ID.
        allocations.record(Kind::User, "alice", 5);
        allocations.save().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "u alice 998\ng alice 998\n"
        );
        let again = Allocations::load(&path).unwrap();
        assert_eq!(again.get(Kind::User, "alice"), Some(998));
        assert_eq!(again.taken(Kind::Group), BTreeSet::from([998]));
    }

    #[test]
    fn names_the_line_it_cannot_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ids");
        std::fs::write(&path, "u alice 998\n\nx bob 5\n").unwrap();
        let err = Allocations::load(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}:3: expected `u NAME ID` or `g NAME ID`", path.display())
        );
        std::fs::write(&path, "g bob many\n").unwrap();
        let err = Allocations::load(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}:1: many is not an ID", path.display())
        );
    }
}
