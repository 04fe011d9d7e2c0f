//! The sandbox's read-only lower layers, without a checkout of the whole tree.
//!
//! Every deployment on the machine is already a hardlink checkout of its commit, and the tree the
//! scripts run on (base, layered files, account edits) differs little from one of them: from the
//! base's own deployment by the layered packages' files, from the deployment being built on by what
//! is layered differently, from the previous deployment after an upgrade by what the base changed.
//! So the overlay stacks two lower layers: on top a hardlink checkout of the *delta* only (the
//! entries the tree has and the deployment has not, or has differently, the directories on their
//! way carrying the tree's metadata, and whiteouts for the entries the deployment has and the tree
//! lacks), beneath it the deployment's directory as it is. The delta is found by reading only the
//! directories whose checksums differ, so the sandbox costs what is layered, not the base. Neither
//! layer is ever written: in-place writes go to the overlay's upper directory, never to a repo
//! object.
//!
//! A deployment's directory is its commit checked out, plus what the deploy adds outside `usr` (the
//! merged `etc`): those are hidden, and the tree's own entries outside `usr` (a few symlinks and
//! empty directories) are taken whole. When no deployment fits (none can be read, a path an overlay
//! option cannot hold, a `usr` that does not match its commit), the whole tree is checked out.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ostree::gio;
use ostree::gio::prelude::*;

/// A tree checked out on this machine: a deployment's directory and the commit it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checkout {
    pub commit: String,
    pub path: PathBuf,
}

/// The lower layers of the sandbox's overlay.
#[derive(Debug)]
pub(crate) enum Lower {
    /// A checkout of the whole tree, commit `commit`.
    Whole { commit: String },
    /// A checkout of the delta (commit `delta`) above the checkout `below`.
    Stacked {
        delta: String,
        /// Paths (relative to the root) the delta hides: overlay whiteouts.
        whiteouts: Vec<String>,
        /// Paths of the delta's directories that hide the directory beneath: opaque.
        opaque: Vec<String>,
        below: Checkout,
        /// How many entries the delta has (files, directories, whiteouts).
        entries: usize,
    },
}

/// Decides the lower layers for `root`, the tree the scripts run on (from `write_mtree`): the delta
/// from the checkout of `checkouts` it differs least from, else the whole tree. Writes the commit to
/// check out; call inside a repo transaction.
pub(crate) fn prepare(
    repo: &ostree::Repo,
    root: &ostree::RepoFile,
    checkouts: &[Checkout],
) -> Result<Lower> {
    root.ensure_resolved()?;
    let tree = Dir {
        contents: root
            .tree_get_contents_checksum()
            .context("a written tree has a dirtree")?
            .to_string(),
        meta: root
            .tree_get_metadata_checksum()
            .context("a written tree has a dirmeta")?
            .to_string(),
    };
    let mut best: Option<(Delta, &Checkout)> = None;
    let mut seen = BTreeSet::new();
    for checkout in checkouts {
        if !seen.insert(&checkout.commit) {
            continue;
        }
        let budget = best.as_ref().map_or(usize::MAX, |(delta, _)| delta.entries);
        // A checkout that cannot be read is passed over: the whole tree is always a way out.
        match usable(repo, checkout).and_then(|()| Delta::between(repo, &tree, checkout, budget)) {
            Ok(Some(delta)) => best = Some((delta, checkout)),
            Ok(None) => {}
            Err(why) => tracing::debug!(
                "the scripts' tree is not stacked on {}: {why:#}",
                checkout.path.display()
            ),
        }
    }
    let commit = |root: &ostree::RepoFile, subject: &str| -> Result<String> {
        Ok(repo
            .write_commit(
                None,
                Some(subject),
                None,
                None,
                root,
                gio::Cancellable::NONE,
            )?
            .to_string())
    };
    Ok(match best {
        Some((delta, below)) => {
            let top = repo.write_mtree(&delta.tree, gio::Cancellable::NONE)?;
            let top = top
                .downcast::<ostree::RepoFile>()
                .expect("write_mtree returns a RepoFile");
            Lower::Stacked {
                delta: commit(&top, "pkglayer: tree for scripts, beyond a deployment")?,
                whiteouts: delta.whiteouts,
                opaque: delta.opaque,
                below: below.clone(),
                entries: delta.entries,
            }
        }
        None => Lower::Whole {
            commit: commit(root, "pkglayer: tree for scripts")?,
        },
    })
}

impl Lower {
    /// Checks the layers out under `scratch` and returns the overlay's `lowerdir` value. Call outside
    /// a repo transaction.
    pub fn check_out(&self, repo: &ostree::Repo, scratch: &Path) -> Result<String> {
        let options = ostree::RepoCheckoutAtOptions {
            mode: ostree::RepoCheckoutMode::None,
            ..Default::default()
        };
        let check_out = |commit: &str, path: &Path| {
            repo.checkout_at(
                Some(&options),
                libc::AT_FDCWD,
                path,
                commit,
                gio::Cancellable::NONE,
            )
        };
        match self {
            Lower::Whole { commit } => {
                tracing::info!(
                    "no deployment to stack the scripts' tree on: checking all of it out"
                );
                let lower = scratch.join("lower");
                check_out(commit, &lower).context("Checking out the tree for its scripts")?;
                Ok(overlay_path(&lower)?.to_string())
            }
            Lower::Stacked {
                delta,
                whiteouts,
                opaque,
                below,
                entries,
            } => {
                tracing::info!(
                    "the scripts' tree is the deployment {} and {entries} entries that differ from it",
                    below.path.display()
                );
                let top = scratch.join("delta");
                check_out(delta, &top).context("Checking out the tree for its scripts")?;
                for path in whiteouts {
                    let path = top.join(path);
                    rustix::fs::mknodat(
                        rustix::fs::CWD,
                        &path,
                        rustix::fs::FileType::CharacterDevice,
                        rustix::fs::Mode::empty(),
                        0,
                    )
                    .with_context(|| format!("Making the whiteout {}", path.display()))?;
                }
                for path in opaque {
                    let path = top.join(path);
                    rustix::fs::lsetxattr(
                        &path,
                        "trusted.overlay.opaque",
                        b"y",
                        rustix::fs::XattrFlags::empty(),
                    )
                    .with_context(|| format!("Marking {} opaque", path.display()))?;
                }
                Ok(format!(
                    "{}:{}",
                    overlay_path(&top)?,
                    overlay_path(&below.path)?
                ))
            }
        }
    }
}

/// `path` as an overlay mount option can hold it.
pub(crate) fn overlay_path(path: &Path) -> Result<&str> {
    let text = path
        .to_str()
        .with_context(|| format!("cannot mount an overlay on {}: not UTF-8", path.display()))?;
    if text.contains([',', ':', '\\']) {
        bail!("cannot mount an overlay on {text}: the path holds ',', ':' or '\\'");
    }
    Ok(text)
}

/// Whether `checkout` can lie beneath the delta: its path fits an overlay option, and its `usr` has
/// the entries of its commit's (catches a deployment directory missing or not checked out).
fn usable(repo: &ostree::Repo, checkout: &Checkout) -> Result<()> {
    overlay_path(&checkout.path)?;
    let Some(Entry::Dir(usr)) =
        entries(repo, &root_contents(repo, &checkout.commit)?)?.remove("usr")
    else {
        bail!("its commit has no usr directory");
    };
    let expected: BTreeSet<String> = entries(repo, &usr.contents)?.into_keys().collect();
    let usr_path = checkout.path.join("usr");
    let found = std::fs::read_dir(&usr_path)
        .with_context(|| format!("Reading {}", usr_path.display()))?
        .map(|entry| Ok(entry?.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<BTreeSet<String>>>()?;
    if expected != found {
        bail!("its usr does not hold what its commit's does");
    }
    Ok(())
}

/// The dirtree checksum of `commit`'s root.
fn root_contents(repo: &ostree::Repo, commit: &str) -> Result<String> {
    let (root, _) = repo.read_commit(commit, gio::Cancellable::NONE)?;
    let root = root
        .downcast::<ostree::RepoFile>()
        .expect("read_commit returns a RepoFile");
    root.ensure_resolved()?;
    Ok(root
        .tree_get_contents_checksum()
        .context("a commit's root has a dirtree")?
        .to_string())
}

/// A directory of a tree: its dirtree and dirmeta checksums.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Dir {
    contents: String,
    meta: String,
}

/// An entry of a directory of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// A regular file or a symlink: its content object.
    File(String),
    Dir(Dir),
}

/// The entries of the dirtree `contents`, by name.
fn entries(repo: &ostree::Repo, contents: &str) -> Result<BTreeMap<String, Entry>> {
    type Files = Vec<(String, Vec<u8>)>;
    type Dirs = Vec<(String, Vec<u8>, Vec<u8>)>;
    let variant = repo.load_variant(ostree::ObjectType::DirTree, contents)?;
    let (files, dirs): (Files, Dirs) = variant
        .get()
        .with_context(|| format!("dirtree {contents} is not a(say)a(sayay)"))?;
    let mut entries = BTreeMap::new();
    for (name, checksum) in files {
        entries.insert(name, Entry::File(hex::encode(checksum)));
    }
    for (name, contents, meta) in dirs {
        let dir = Dir {
            contents: hex::encode(contents),
            meta: hex::encode(meta),
        };
        entries.insert(name, Entry::Dir(dir));
    }
    Ok(entries)
}

/// The delta would have more entries than allowed.
#[derive(Debug)]
struct OverBudget;

impl fmt::Display for OverBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the delta is larger than another one")
    }
}

impl std::error::Error for OverBudget {}

/// What a tree has that a checkout has not, or has differently, and what it lacks.
struct Delta<'r> {
    repo: &'r ostree::Repo,
    tree: ostree::MutableTree,
    whiteouts: Vec<String>,
    opaque: Vec<String>,
    entries: usize,
    /// More entries than this and the delta is not worth finishing.
    budget: usize,
}

impl<'r> Delta<'r> {
    /// The delta from `checkout` to `tree`, or none when it would have more than `budget` entries or
    /// the two do not both have a `usr` directory.
    fn between(
        repo: &'r ostree::Repo,
        tree: &Dir,
        checkout: &Checkout,
        budget: usize,
    ) -> Result<Option<Delta<'r>>> {
        let new = entries(repo, &tree.contents)?;
        let old = entries(repo, &root_contents(repo, &checkout.commit)?)?;
        let (Some(Entry::Dir(new_usr)), Some(Entry::Dir(old_usr))) =
            (new.get("usr"), old.get("usr"))
        else {
            return Ok(None);
        };
        let mut delta = Delta {
            repo,
            tree: ostree::MutableTree::new(),
            whiteouts: Vec::new(),
            opaque: Vec::new(),
            entries: 0,
            budget,
        };
        delta.tree.set_metadata_checksum(&tree.meta);
        let found = (|| -> Result<()> {
            let root = delta.tree.clone();
            for (name, entry) in &new {
                match entry {
                    Entry::Dir(_) if name == "usr" => {
                        if new_usr != old_usr {
                            let usr = delta.dir(&root, name, new_usr)?;
                            delta.diff(&new_usr.contents, &old_usr.contents, &usr, name)?;
                        }
                    }
                    // Outside usr, the deployment directory may hold more than its commit.
                    Entry::Dir(dir) => {
                        delta.whole(&root, name, dir)?;
                        delta.opaque.push(name.clone());
                    }
                    Entry::File(checksum) => delta.file(&root, name, checksum)?,
                }
            }
            for entry in std::fs::read_dir(&checkout.path)
                .with_context(|| format!("Reading {}", checkout.path.display()))?
            {
                let name = entry?.file_name().to_string_lossy().into_owned();
                if !new.contains_key(&name) {
                    delta.whiteout(name)?;
                }
            }
            Ok(())
        })();
        match found {
            Ok(()) => Ok(Some(delta)),
            Err(err) if err.is::<OverBudget>() => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Adds what differs between the dirtrees `new` and `old` at `path` into `into`.
    fn diff(&mut self, new: &str, old: &str, into: &ostree::MutableTree, path: &str) -> Result<()> {
        let new = entries(self.repo, new)?;
        let old = entries(self.repo, old)?;
        for (name, entry) in &new {
            let child = format!("{path}/{name}");
            match (entry, old.get(name)) {
                (entry, Some(same)) if entry == same => {}
                (Entry::Dir(dir), Some(Entry::Dir(before))) => {
                    let sub = self.dir(into, name, dir)?;
                    self.diff(&dir.contents, &before.contents, &sub, &child)?;
                }
                // A directory over a file, or a file over a directory, hides it: no whiteout.
                (Entry::Dir(dir), _) => self.whole(into, name, dir)?,
                (Entry::File(checksum), _) => self.file(into, name, checksum)?,
            }
        }
        for name in old.keys().filter(|name| !new.contains_key(*name)) {
            self.whiteout(format!("{path}/{name}"))?;
        }
        Ok(())
    }

    /// Adds the directory `name` with `dir`'s metadata and no entries yet.
    fn dir(
        &mut self,
        into: &ostree::MutableTree,
        name: &str,
        dir: &Dir,
    ) -> Result<ostree::MutableTree> {
        self.count(1)?;
        let sub = into.ensure_dir(name)?;
        sub.set_metadata_checksum(&dir.meta);
        Ok(sub)
    }

    /// Adds the directory `name` with all of `dir`.
    fn whole(&mut self, into: &ostree::MutableTree, name: &str, dir: &Dir) -> Result<()> {
        self.count_tree(&dir.contents)?;
        let sub = into.ensure_dir(name)?;
        if !sub.fill_empty_from_dirtree(self.repo, &dir.contents, &dir.meta) {
            bail!("the delta's new directory {name} is not empty");
        }
        Ok(())
    }

    fn file(&mut self, into: &ostree::MutableTree, name: &str, checksum: &str) -> Result<()> {
        self.count(1)?;
        into.replace_file(name, checksum)?;
        Ok(())
    }

    fn whiteout(&mut self, path: String) -> Result<()> {
        self.count(1)?;
        self.whiteouts.push(path);
        Ok(())
    }

    /// Counts the directory `contents` and everything beneath it.
    fn count_tree(&mut self, contents: &str) -> Result<()> {
        self.count(1)?;
        for entry in entries(self.repo, contents)?.into_values() {
            match entry {
                Entry::File(_) => self.count(1)?,
                Entry::Dir(dir) => self.count_tree(&dir.contents)?,
            }
        }
        Ok(())
    }

    fn count(&mut self, entries: usize) -> Result<()> {
        self.entries += entries;
        if self.entries >= self.budget {
            return Err(OverBudget.into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(dir: &Path) -> ostree::Repo {
        let repo = ostree::Repo::new_for_path(dir.join("repo"));
        repo.create(ostree::RepoMode::BareUser, gio::Cancellable::NONE)
            .unwrap();
        repo
    }

    /// Commits a tree of `entries` (`path=contents` a file, `path/` an empty directory); returns its
    /// root and the commit.
    fn commit(repo: &ostree::Repo, entries: &[&str]) -> (ostree::RepoFile, String) {
        repo.prepare_transaction(gio::Cancellable::NONE).unwrap();
        let meta = crate::tree::write_dirmeta(repo, 0, 0, 0o755).unwrap();
        let tree = ostree::MutableTree::new();
        tree.set_metadata_checksum(&meta);
        for entry in entries {
            let (path, contents) = entry.split_once('=').unwrap_or((entry, ""));
            let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
            let (dirs, file) = if path.ends_with('/') {
                (&parts[..], None)
            } else {
                (&parts[..parts.len() - 1], parts.last())
            };
            let mut dir = tree.clone();
            for part in dirs {
                dir = dir.ensure_dir(part).unwrap();
                dir.set_metadata_checksum(&meta);
            }
            if let Some(name) = file {
                let checksum = crate::tree::write_root_file(repo, contents.as_bytes()).unwrap();
                dir.replace_file(name, &checksum).unwrap();
            }
        }
        let root = repo.write_mtree(&tree, gio::Cancellable::NONE).unwrap();
        let root = root.downcast::<ostree::RepoFile>().unwrap();
        let commit = repo
            .write_commit(None, None, None, None, &root, gio::Cancellable::NONE)
            .unwrap();
        repo.commit_transaction(gio::Cancellable::NONE).unwrap();
        (root, commit.to_string())
    }

    /// A directory standing for a deployment of `commit`, holding `paths` (all directories).
    fn checkout(dir: &Path, name: &str, commit: &str, paths: &[&str]) -> Checkout {
        let path = dir.join(name);
        for name in paths {
            std::fs::create_dir_all(path.join(name)).unwrap();
        }
        Checkout {
            commit: commit.to_string(),
            path,
        }
    }

    /// The paths of a commit's tree, directories ending in `/`.
    fn paths(repo: &ostree::Repo, contents: &str, prefix: &str, out: &mut Vec<String>) {
        for (name, entry) in entries(repo, contents).unwrap() {
            match entry {
                Entry::File(_) => out.push(format!("{prefix}{name}")),
                Entry::Dir(dir) => {
                    out.push(format!("{prefix}{name}/"));
                    paths(repo, &dir.contents, &format!("{prefix}{name}/"), out);
                }
            }
        }
    }

    #[test]
    fn the_delta_holds_what_differs_and_hides_what_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let repo = repo(dir.path());
        let (_, old) = commit(
            &repo,
            &["usr/a=1", "usr/b/x=x", "usr/c=c", "usr/d/y=y", "var/"],
        );
        let (new, new_commit) = commit(
            &repo,
            &["usr/a=2", "usr/b/x=x", "usr/c/z=z", "usr/e=e", "var/lib/"],
        );
        // The deployment's directory has a merged etc its commit has not.
        let below = checkout(
            dir.path(),
            "old.0",
            &old,
            &["usr/a", "usr/b", "usr/c", "usr/d", "var", "etc"],
        );
        let Lower::Stacked {
            delta,
            whiteouts,
            opaque,
            below: found,
            entries,
        } = prepare(&repo, &new, std::slice::from_ref(&below)).unwrap()
        else {
            panic!("not stacked");
        };
        assert_eq!(found, below);
        assert_eq!(whiteouts, ["usr/d", "etc"]);
        assert_eq!(opaque, ["var"]);
        let mut delta_paths = Vec::new();
        paths(
            &repo,
            &root_contents(&repo, &delta).unwrap(),
            "",
            &mut delta_paths,
        );
        // a changed, c a directory now, e new; b as it was is not there.
        assert_eq!(
            delta_paths,
            [
                "usr/", "usr/a", "usr/c/", "usr/c/z", "usr/e", "var/", "var/lib/"
            ]
        );
        assert_eq!(entries, 9);

        // The least different checkout wins, whatever the order.
        let alike = checkout(
            dir.path(),
            "new.0",
            &new_commit,
            &["usr/a", "usr/b", "usr/c", "usr/e", "var"],
        );
        for checkouts in [
            [below.clone(), alike.clone()],
            [alike.clone(), below.clone()],
        ] {
            let Lower::Stacked { below, entries, .. } = prepare(&repo, &new, &checkouts).unwrap()
            else {
                panic!("not stacked");
            };
            assert_eq!((below, entries), (alike.clone(), 2));
        }
    }

    #[test]
    fn without_a_matching_checkout_the_whole_tree_is_checked_out() {
        let dir = tempfile::tempdir().unwrap();
        let repo = repo(dir.path());
        let (_, old) = commit(&repo, &["usr/a=1"]);
        let (new, _) = commit(&repo, &["usr/a=2"]);
        assert!(matches!(
            prepare(&repo, &new, &[]).unwrap(),
            Lower::Whole { .. }
        ));
        // Its usr holds something its commit has not.
        let changed = checkout(dir.path(), "old.0", &old, &["usr/a", "usr/stray"]);
        assert!(matches!(
            prepare(&repo, &new, &[changed]).unwrap(),
            Lower::Whole { .. }
        ));
        // A path an overlay option cannot hold.
        let comma = checkout(dir.path(), "old,1", &old, &["usr/a"]);
        assert!(matches!(
            prepare(&repo, &new, &[comma]).unwrap(),
            Lower::Whole { .. }
        ));
    }
}
