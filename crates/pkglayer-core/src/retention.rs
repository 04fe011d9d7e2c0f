//! What the repo and the caches keep over a host's life.
//!
//! A layered deployment's commit does not reference its base (libostree's prune does not follow
//! parents), and the vendor's ref moves on with every pull: without a ref of its own, the base a
//! deployment layers on would be pruned and no operation could derive a layer from it again. So every
//! base a deployment uses is pinned by a ref `pkglayer/base/<commit>`, and released when none does.
//!
//! After every operation that changes the deployment list, what no deployment needs any more is
//! released: cached packages no deployment layers or requests, base rpmdb copies, solver caches of old
//! metadata, and all but the newest script results. The repo's size then follows the deployments,
//! not the host's age. `cleanup --cache` releases everything that can go.

use std::collections::HashSet;

use anyhow::{Context, Result};
use fn_error_context::context;
use ostree::gio;

use crate::commit_metadata::{CommitInfo, DeploymentLayer};
use crate::layout::{CacheFolder, refs};
use crate::sysroot::{Sysroot, SysrootLock};

/// Script results kept after an operation, newest first: enough for an uninstall followed by the
/// same install again, bounded whatever the host's age.
const KEPT_SCRIPT_RESULTS: usize = 4;

/// How much to release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// After an operation: what no deployment needs; the newest script results and downloads in
    /// progress stay.
    Unused,
    /// `cleanup --cache`: also every script result, downloads and interrupted operations' scratch.
    Everything,
}

/// What was released.
#[derive(Debug, Default)]
pub struct Released {
    /// Package cache refs dropped (their objects go with the repo prune).
    pub packages: usize,
    /// Files and folders removed from the stateroot's cache folder.
    pub cache_entries: usize,
    /// Kept script results dropped (scripts run again next time).
    pub script_results: usize,
    /// Scratch directories of interrupted operations removed.
    pub scratch: usize,
    /// Base commits no deployment layers on any more.
    pub bases: usize,
}

/// Pins `commit` as a base a deployment is about to use.
pub(crate) fn pin_base(repo: &ostree::Repo, commit: &str) -> Result<()> {
    repo.set_ref_immediate(
        None,
        &refs::base(commit),
        Some(commit),
        gio::Cancellable::NONE,
    )
    .with_context(|| format!("Pinning base commit {commit}"))
}

/// `cleanup --cache`: releases everything no deployment uses, under the sysroot lock.
#[context("Cleaning up the package cache")]
pub fn clean(sysroot: &Sysroot) -> Result<Released> {
    let lock = sysroot.lock("cleanup")?;
    sysroot.reload()?;
    release(sysroot, &lock, Scope::Everything)
}

/// After the deployment list changed: releases what no deployment uses. The change is done by then,
/// so a failure here is a warning, not the operation's failure; the next operation (or `cleanup
/// --cache`) releases it.
pub(crate) fn release_after_change(sysroot: &Sysroot, lock: &SysrootLock) {
    if let Err(err) = release(sysroot, lock, Scope::Unused) {
        tracing::warn!("{err:#}; `pkglayer cleanup --cache` tries again");
    }
}

/// Pins the base of every deployment (all stateroots), releases what `scope` says no deployment
/// needs, then lets libostree prune the repo and remove deployment directories no list names.
#[context("Releasing what no deployment uses")]
pub(crate) fn release(sysroot: &Sysroot, _lock: &SysrootLock, scope: Scope) -> Result<Released> {
    let repo = sysroot.repo();
    let mut keep_packages = HashSet::new();
    let mut keep_bases = HashSet::new();
    for deployment in sysroot.ostree().deployments() {
        // An origin that does not parse stops the release: its local packages must not go.
        let origin = match deployment.origin() {
            Some(keyfile) => Some(
                crate::origin::Origin::parse(&keyfile.to_data()).with_context(|| {
                    format!("Reading the origin of deployment {}", deployment.csum())
                })?,
            ),
            None => None,
        };
        let layer = match &origin {
            Some(origin) => DeploymentLayer::of_deployment(&repo, &deployment.csum(), origin)?,
            None => DeploymentLayer::read(&repo, &deployment.csum())?,
        };
        if layer.base_commit != deployment.csum().as_str() {
            keep_bases.insert(layer.base_commit);
        }
        keep_packages.extend(layer.packages.iter().map(refs::package));
        if let Some(origin) = origin {
            keep_packages.extend(
                origin
                    .requested_local
                    .values()
                    .chain(origin.override_replace_local.values())
                    .map(|sha| refs::local_package(sha)),
            );
        }
    }

    let mut released = Released::default();
    for base in &keep_bases {
        pin_base(&repo, base)?;
    }
    let mut script_results = Vec::new();
    let refs = repo.list_refs(None, gio::Cancellable::NONE)?;
    for (name, commit) in &refs {
        let drop = if let Some(base) = name.strip_prefix(refs::BASES) {
            let unused = !keep_bases.contains(base);
            released.bases += usize::from(unused);
            unused
        } else if name.starts_with(refs::PACKAGES) || name.starts_with(refs::LOCAL_PACKAGES) {
            let unused = !keep_packages.contains(name.as_str());
            released.packages += usize::from(unused);
            unused
        } else if name.starts_with(refs::SCRIPT_RESULTS) {
            script_results.push((name.as_str(), commit.as_str()));
            false
        } else {
            false
        };
        if drop {
            repo.set_ref_immediate(None, name, None, gio::Cancellable::NONE)?;
        }
    }
    let kept_results = match scope {
        Scope::Unused => KEPT_SCRIPT_RESULTS,
        Scope::Everything => 0,
    };
    for name in script_results_to_drop(dated(&repo, script_results)?, kept_results) {
        repo.set_ref_immediate(None, &name, None, gio::Cancellable::NONE)?;
        released.script_results += 1;
    }

    released.cache_entries = release_cache_folder(sysroot, &keep_bases, scope)?;
    if scope == Scope::Everything {
        released.scratch = crate::scratch::remove_stale(&repo)?;
    }
    // libostree's cleanup removes deployment directories no deployment list names (an interrupted
    // deploy) and prunes objects no ref and no deployment reaches.
    sysroot.ostree().cleanup(gio::Cancellable::NONE)?;
    Ok(released)
}

/// The script result refs (name, commit) with the time of their commit.
fn dated(repo: &ostree::Repo, results: Vec<(&str, &str)>) -> Result<Vec<(u64, String)>> {
    let mut dated = Vec::with_capacity(results.len());
    for (name, commit) in results {
        dated.push((
            CommitInfo::load(repo, commit)?.timestamp(),
            name.to_string(),
        ));
    }
    Ok(dated)
}

/// Of the script results (commit time in seconds since the epoch, ref name), those to drop when the
/// newest `kept` stay, newest first. Equal times are ordered by name.
fn script_results_to_drop(mut dated: Vec<(u64, String)>, kept: usize) -> Vec<String> {
    dated.sort();
    dated
        .into_iter()
        .rev()
        .skip(kept)
        .map(|(_, name)| name)
        .collect()
}

/// What the entries of the cache folder are checked against.
struct InUse<'a> {
    /// Bases deployments layer on.
    bases: &'a HashSet<String>,
    /// Deployed commits: a plain deployment is its own base.
    deployed: HashSet<String>,
    /// sha256 of each cached `repomd.xml`: the metadata that is current.
    repomd: HashSet<String>,
}

/// Whether entry `name` of the cache folder `folder` stays when `scope` is released.
fn keeps_cache_entry(folder: CacheFolder, name: &str, in_use: &InUse, scope: Scope) -> bool {
    match folder {
        // `.partial-*` folders are copies in the making (an operation without the lock: a dry
        // run); only `cleanup --cache` removes them, as leftovers of interrupted runs.
        CacheFolder::BaseRpmdb => {
            in_use.bases.contains(name)
                || in_use.deployed.contains(name)
                || (scope == Scope::Unused && name.starts_with(".partial-"))
        }
        CacheFolder::Solv => in_use
            .repomd
            .iter()
            .any(|checksum| name.contains(checksum.as_str())),
        CacheFolder::Downloads => scope == Scope::Unused,
        // Everything: only the leftovers of interrupted syncs go.
        CacheFolder::RepoMetadata => {
            scope == Scope::Unused || (!name.starts_with(".staging") && !name.ends_with(".old"))
        }
    }
}

/// Removes base rpmdb copies of bases no deployment uses, solver caches of metadata that is no longer
/// current, and (everything) download leftovers; returns how many entries went.
fn release_cache_folder(
    sysroot: &Sysroot,
    keep_bases: &HashSet<String>,
    scope: Scope,
) -> Result<usize> {
    let cache = sysroot.cache();
    let current_repomd: HashSet<String> =
        std::fs::read_dir(cache.folder(CacheFolder::RepoMetadata))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let text = std::fs::read(entry.path().join("repomd.xml")).ok()?;
                crate::repo::repomd::ChecksumAlgorithm::Sha256
                    .digest(&text[..])
                    .ok()
            })
            .collect();
    // A plain deployment is its own base; its rpmdb copy stays while it is deployed.
    let deployed: HashSet<String> = sysroot
        .ostree()
        .deployments()
        .iter()
        .map(|d| d.csum().to_string())
        .collect();
    let in_use = InUse {
        bases: keep_bases,
        deployed,
        repomd: current_repomd,
    };
    let mut folders = vec![CacheFolder::BaseRpmdb, CacheFolder::Solv];
    if scope == Scope::Everything {
        folders.extend([CacheFolder::Downloads, CacheFolder::RepoMetadata]);
    }
    let mut remove = Vec::new();
    for folder in folders {
        remove.extend(
            std::fs::read_dir(cache.folder(folder))
                .into_iter()
                .flatten()
                .flatten()
                .filter(|entry| {
                    let name = entry.file_name();
                    !keeps_cache_entry(folder, &name.to_string_lossy(), &in_use, scope)
                })
                .map(|entry| entry.path()),
        );
    }
    for path in &remove {
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        };
        removed.with_context(|| format!("Removing {}", path.display()))?;
    }
    Ok(remove.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(names: &[&str]) -> HashSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn the_newest_script_results_stay() {
        let dated = vec![
            (300, "pkglayer/scripts/c".to_string()),
            (100, "pkglayer/scripts/a".to_string()),
            (200, "pkglayer/scripts/b2".to_string()),
            (200, "pkglayer/scripts/b1".to_string()),
            (400, "pkglayer/scripts/d".to_string()),
        ];
        assert_eq!(
            script_results_to_drop(dated.clone(), 2),
            [
                "pkglayer/scripts/b2",
                "pkglayer/scripts/b1",
                "pkglayer/scripts/a"
            ]
        );
        assert_eq!(
            script_results_to_drop(dated.clone(), 0),
            [
                "pkglayer/scripts/d",
                "pkglayer/scripts/c",
                "pkglayer/scripts/b2",
                "pkglayer/scripts/b1",
                "pkglayer/scripts/a"
            ]
        );
        assert!(script_results_to_drop(dated, KEPT_SCRIPT_RESULTS + 1).is_empty());
    }

    #[test]
    fn base_rpmdb_copies_stay_while_a_deployment_uses_the_base() {
        let bases = names(&["layered-on"]);
        let in_use = InUse {
            bases: &bases,
            deployed: names(&["plain"]),
            repomd: HashSet::new(),
        };
        let keeps =
            |name: &str, scope| keeps_cache_entry(CacheFolder::BaseRpmdb, name, &in_use, scope);
        for scope in [Scope::Unused, Scope::Everything] {
            assert!(keeps("layered-on", scope));
            assert!(keeps("plain", scope));
            assert!(!keeps("old-base", scope));
        }
        // A copy in the making (a dry run's) goes only with everything.
        assert!(keeps(".partial-x1", Scope::Unused));
        assert!(!keeps(".partial-x1", Scope::Everything));
    }

    #[test]
    fn solver_caches_stay_while_their_metadata_is_current() {
        let bases = HashSet::new();
        let in_use = InUse {
            bases: &bases,
            deployed: HashSet::new(),
            repomd: names(&["abc123"]),
        };
        for scope in [Scope::Unused, Scope::Everything] {
            let keeps = |name| keeps_cache_entry(CacheFolder::Solv, name, &in_use, scope);
            assert!(keeps("fedora-abc123.solv"));
            assert!(keeps("fedora-abc123-filelists.solv"));
            assert!(keeps("fedora-abc123.modules.json"));
            assert!(!keeps("fedora-def456.solv"));
        }
    }

    #[test]
    fn downloads_and_sync_leftovers_go_only_with_everything() {
        let bases = HashSet::new();
        let in_use = InUse {
            bases: &bases,
            deployed: HashSet::new(),
            repomd: HashSet::new(),
        };
        let keeps = |folder, name| keeps_cache_entry(folder, name, &in_use, Scope::Everything);
        assert!(!keeps(CacheFolder::Downloads, "strace-6.1-1.x86_64.rpm"));
        assert!(keeps(CacheFolder::RepoMetadata, "fedora-0123abcd"));
        assert!(!keeps(CacheFolder::RepoMetadata, ".staging-fedora-a1b2c3"));
        assert!(!keeps(CacheFolder::RepoMetadata, "fedora-0123abcd.old"));

        let keeps = |folder, name| keeps_cache_entry(folder, name, &in_use, Scope::Unused);
        assert!(keeps(
            CacheFolder::Downloads,
            "strace-6.1-1.x86_64.rpm.partial"
        ));
        assert!(keeps(CacheFolder::RepoMetadata, ".staging-fedora-a1b2c3"));
    }
}
