//! `cleanup --cache`: dropping what no deployment uses from the package cache and the stateroot's
//! cache folder.

use std::collections::HashSet;

use anyhow::{Context, Result};
use fn_error_context::context;
use ostree::gio;

use crate::plan::deployment_layer;
use crate::rpm::Nevra;
use crate::rpm::import::cache_ref;
use crate::sysroot::Sysroot;

/// The ref namespace of the package cache.
const PACKAGE_REFS: &str = "pkglayer/pkg/";

/// What the cleanup removed.
#[derive(Debug, Default)]
pub struct CacheCleanup {
    /// Package cache refs dropped (their objects go with the repo prune).
    pub packages: usize,
    /// Files and folders removed from the stateroot's cache folder.
    pub cache_entries: usize,
    /// Kept script results dropped (scripts run again next time).
    pub script_results: usize,
    /// Scratch directories of interrupted operations removed.
    pub scratch: usize,
}

/// Drops every cached package no deployment of the sysroot layers (local packages requested by a
/// deployment stay too), the base rpmdb copies of bases no deployment uses, solver caches of
/// metadata no longer current, download leftovers, and every kept script result; then prunes the
/// repo.
#[context("Cleaning up the package cache")]
pub fn clean(sysroot: &Sysroot) -> Result<CacheCleanup> {
    let _lock = sysroot.lock()?;
    let repo = sysroot.repo();
    let mut keep_refs = HashSet::new();
    let mut keep_bases = HashSet::new();
    for deployment in sysroot.ostree().deployments() {
        let layer = deployment_layer(&repo, &deployment.csum())?;
        keep_bases.insert(layer.base_commit);
        keep_refs.extend(
            layer
                .packages
                .iter()
                .filter_map(|n| Nevra::parse(n))
                .map(|n| cache_ref(&n)),
        );
        if let Some(keyfile) = deployment.origin()
            && let Ok(origin) = crate::origin::Origin::parse(&keyfile.to_data())
        {
            keep_refs.extend(
                origin
                    .requested_local
                    .keys()
                    .filter_map(|n| Nevra::parse(n))
                    .map(|n| cache_ref(&n)),
            );
        }
    }

    let mut outcome = CacheCleanup::default();
    let refs = repo.list_refs(None, gio::Cancellable::NONE)?;
    for name in refs.keys() {
        if name.starts_with(PACKAGE_REFS) && !keep_refs.contains(name) {
            repo.set_ref_immediate(None, name, None, gio::Cancellable::NONE)?;
            outcome.packages += 1;
        } else if name.starts_with(crate::scripts::RESULT_REFS) {
            repo.set_ref_immediate(None, name, None, gio::Cancellable::NONE)?;
            outcome.script_results += 1;
        }
    }

    let cache = sysroot.cache_dir();
    let current_repomd: HashSet<String> = std::fs::read_dir(cache.join("repomd-v1"))
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
    let doomed = |folder: &str, keep: &dyn Fn(&str) -> bool| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(cache.join(folder))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| !keep(&entry.file_name().to_string_lossy()))
            .map(|entry| entry.path())
            .collect()
    };
    let mut remove = Vec::new();
    remove.extend(doomed("base-v1", &|name| keep_bases.contains(name)));
    remove.extend(doomed("solv-v1", &|name| {
        current_repomd
            .iter()
            .any(|checksum| name.contains(checksum.as_str()))
    }));
    remove.extend(doomed("packages-v1", &|_| false));
    remove.extend(doomed("repomd-v1", &|name| {
        !name.starts_with(".staging") && !name.ends_with(".old")
    }));
    for path in remove {
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.with_context(|| format!("Removing {}", path.display()))?;
        outcome.cache_entries += 1;
    }

    outcome.scratch = crate::scratch::remove_stale(&repo)?;
    // libostree's cleanup removes deployment directories no deployment list names (an interrupted
    // deploy) and prunes objects no ref and no deployment reaches.
    sysroot.ostree().cleanup(gio::Cancellable::NONE)?;
    Ok(outcome)
}
