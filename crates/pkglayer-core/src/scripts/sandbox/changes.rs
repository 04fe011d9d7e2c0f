//! What the scripts did, read back from the overlay's upper directory: the paths they deleted
//! (whiteouts, opaque directories), checked against what packages own, and their new and changed
//! files under `usr/`, written into the mutable tree.

use std::collections::BTreeSet;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use anyhow::{Context, Result};
use ostree::gio;
use ostree::gio::prelude::*;

/// The paths (relative to the root) of the tree `root` that the overlay's `upper` directory hides,
/// but those `ignore` allows: whiteouts, and the entries of directories deleted and made again
/// (opaque).
pub(super) fn deletions(
    upper: &Path,
    root: &gio::File,
    ignore: &dyn Fn(&str) -> bool,
) -> Result<BTreeSet<String>> {
    let mut found = BTreeSet::new();
    hidden(upper, root, "", ignore, &mut found)?;
    Ok(found)
}

fn hidden(
    dir: &Path,
    tree: &gio::File,
    relative: &str,
    ignore: &dyn Fn(&str) -> bool,
    found: &mut BTreeSet<String>,
) -> Result<()> {
    let child_path = |name: &str| {
        if relative.is_empty() {
            name.to_string()
        } else {
            format!("{relative}/{name}")
        }
    };
    // One lookup in the tree per entry of the upper directory: the cost follows what the scripts
    // wrote, not the size of the directories they wrote in.
    let kind_in_tree = |name: &str| {
        tree.child(name).query_file_type(
            gio::FileQueryInfoFlags::NOFOLLOW_SYMLINKS,
            gio::Cancellable::NONE,
        )
    };
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("Reading {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let child = child_path(&name);
        let meta = std::fs::symlink_metadata(&path)?;
        let kind = meta.file_type();
        let was = kind_in_tree(&name);
        if was == gio::FileType::Unknown {
            continue;
        }
        names.insert(name.clone());
        if kind.is_char_device() && meta.rdev() == 0 {
            if !ignore(&child) {
                found.insert(child);
            }
        } else if kind.is_dir() && was == gio::FileType::Directory {
            hidden(&path, &tree.child(&name), &child, ignore, found)?;
        }
    }
    if !relative.is_empty() && is_opaque(dir) {
        for (name, _) in crate::tree::children(tree)? {
            if !names.contains(&name) {
                let child = child_path(&name);
                if !ignore(&child) {
                    found.insert(child);
                }
            }
        }
    }
    Ok(())
}

/// The paths packages own, as rpm names them (`/etc/…` for the tree's `usr/etc/…`), with their
/// owners.
pub(super) struct Owned(std::collections::BTreeMap<String, String>);

impl Owned {
    pub(super) fn new(owners: Vec<(String, String)>) -> Self {
        Owned(owners.into_iter().collect())
    }

    /// Of `deleted` (paths relative to the tree's root), those a package owns or that hold
    /// something a package owns, each with an owner: (path as rpm names it, owner).
    pub(super) fn of(&self, deleted: &[&String]) -> Vec<(String, String)> {
        let mut found = Vec::new();
        for path in deleted {
            let rpm_path = match path.strip_prefix("usr/etc") {
                Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("/etc{rest}"),
                _ => format!("/{path}"),
            };
            let owner = self.0.get(&rpm_path).or_else(|| {
                self.0
                    .range(format!("{rpm_path}/")..)
                    .next()
                    .filter(|(owned, _)| owned.starts_with(&format!("{rpm_path}/")))
                    .map(|(_, owner)| owner)
            });
            if let Some(owner) = owner {
                found.push((rpm_path, owner.clone()));
            }
        }
        found
    }
}

/// Writes what the scripts changed under `usr/` (the overlay's upper directory) into `usr`, the
/// tree's `usr` directory. Paths (relative to the tree's root) for which `ignore` is true are left
/// alone. Returns the changed paths.
pub fn apply_changes(
    repo: &ostree::Repo,
    upper: &Path,
    usr: &ostree::MutableTree,
    ignore: &dyn Fn(&str) -> bool,
) -> Result<Vec<String>> {
    let mut changed = Vec::new();
    let upper_usr = upper.join("usr");
    if upper_usr.is_dir() {
        apply_dir(repo, &upper_usr, usr, "usr", ignore, &mut changed)?;
    }
    Ok(changed)
}

fn apply_dir(
    repo: &ostree::Repo,
    dir: &Path,
    tree: &ostree::MutableTree,
    relative: &str,
    ignore: &dyn Fn(&str) -> bool,
    changed: &mut Vec<String>,
) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let child = format!("{relative}/{name}");
        if ignore(&child) {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path)?;
        let kind = meta.file_type();
        if kind.is_char_device() && meta.rdev() == 0 {
            // An overlay whiteout: the script deleted it.
            tree.remove(&name, true)?;
            changed.push(child);
        } else if kind.is_dir() {
            let existing = crate::tree::mtree_lookup(tree, &name)?;
            let subtree = match existing {
                (_, Some(existing)) if !is_opaque(&path) => existing,
                (None, None) => new_dir(repo, tree, &name, &meta)?,
                // Replaced (a file became a directory, or a directory was deleted and made again).
                _ => {
                    tree.remove(&name, false)?;
                    new_dir(repo, tree, &name, &meta)?
                }
            };
            apply_dir(repo, &path, &subtree, &child, ignore, changed)?;
        } else if kind.is_file() {
            let object = crate::tree::FileObject {
                uid: meta.uid(),
                gid: meta.gid(),
                mode: meta.mode(),
                xattrs: None,
            };
            let checksum = crate::tree::write_file_object_from(repo, &object, &path)?;
            replace(tree, &name, &checksum)?;
            changed.push(child);
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&path)?;
            let checksum = repo.write_symlink(
                None,
                meta.uid(),
                meta.gid(),
                None,
                &target.to_string_lossy(),
                gio::Cancellable::NONE,
            )?;
            replace(tree, &name, &checksum)?;
            changed.push(child);
        } else {
            tracing::warn!("a script created /{child}, which an OSTree tree cannot hold; left out");
        }
    }
    Ok(())
}

/// Puts a file at `name`, replacing a directory there if need be.
fn replace(tree: &ostree::MutableTree, name: &str, checksum: &str) -> Result<()> {
    if crate::tree::mtree_lookup(tree, name)?.1.is_some() {
        tree.remove(name, false)?;
    }
    tree.replace_file(name, checksum)?;
    Ok(())
}

fn new_dir(
    repo: &ostree::Repo,
    tree: &ostree::MutableTree,
    name: &str,
    meta: &std::fs::Metadata,
) -> Result<ostree::MutableTree> {
    let dir = tree.ensure_dir(name)?;
    dir.set_metadata_checksum(&crate::tree::write_dirmeta(
        repo,
        meta.uid(),
        meta.gid(),
        meta.mode() & 0o7777,
    )?);
    Ok(dir)
}

/// Whether overlayfs marked the directory opaque: it hides the lower directory of the same name.
fn is_opaque(path: &Path) -> bool {
    let mut value = [0u8; 4];
    matches!(
        rustix::fs::lgetxattr(path, "trusted.overlay.opaque", &mut value),
        Ok(1) if value[0] == b'y'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletions_count_when_a_package_owns_the_path_or_what_it_holds() {
        let owned = Owned::new(vec![
            ("/usr/lib/os-release".into(), "release".into()),
            ("/etc/group".into(), "setup".into()),
            ("/usr/share/docs/README".into(), "docs".into()),
        ]);
        let deleted: Vec<String> = [
            "usr/lib/os-release",
            "usr/etc/group",
            "usr/share/docs",
            "usr/share/made-by-a-script",
            "usr/etcetera",
            "usr/lib/os",
        ]
        .iter()
        .map(|p| p.to_string())
        .collect();
        let deleted: Vec<&String> = deleted.iter().collect();
        assert_eq!(
            owned.of(&deleted),
            [
                ("/usr/lib/os-release".to_string(), "release".to_string()),
                ("/etc/group".into(), "setup".into()),
                ("/usr/share/docs".into(), "docs".into()),
            ]
        );
    }
}
