//! Editing the origin's base package overrides (rpm-ostree's `override remove|replace|reset`):
//! what the user may ask for, checked against the base before anything is planned.
//!
//! Nothing here writes: a replacement RPM is read (NEVRA, digest, signature, file list) and only
//! imported into the package cache when the transaction is applied.

use std::collections::BTreeSet;
use std::io::Cursor;
use std::path::Path;

use anyhow::{Context, Result};

use crate::commit_metadata::DeploymentLayer;
use crate::error::UserError;
use crate::origin::Origin;
use crate::repo::RepoOptions;
use crate::request::{self, LocalFile};
use crate::rpm::Nevra;
use crate::sysroot::Sysroot;

/// Where a kernel and its initramfs live: a package with files there cannot be overridden yet.
pub(crate) const KERNEL_DIR: &str = "/usr/lib/modules/";

/// `origin` with the base packages `names` removed. Each must be a package of the base that is
/// neither removed already nor the kernel.
pub fn with_removals(
    sysroot: &Sysroot,
    layer: &DeploymentLayer,
    mut origin: Origin,
    names: &[String],
) -> Result<Origin> {
    let base = crate::rpmdb::packages_in_commit(&sysroot.repo(), &layer.base_commit)?;
    for name in names {
        if origin.override_remove.contains(name) {
            return Err(UserError::new(format!("{name} is removed already"))
                .hint("`pkglayer status` lists the removed base packages; `pkglayer override reset` brings one back")
                .into());
        }
        if !base.iter().any(|p| p.name == *name) {
            let hint = if origin.requested.contains(name)
                || layer.packages.iter().any(|p| p.name == *name)
            {
                "it is layered, not part of the base: `pkglayer uninstall` removes layered packages"
            } else {
                "override remove takes names of base packages (`pkglayer db list` lists them)"
            };
            return Err(
                UserError::new(format!("{name} is not a package of the base"))
                    .hint(hint)
                    .into(),
            );
        }
        if origin
            .override_replace_local
            .keys()
            .any(|n| n.name == *name)
        {
            return Err(
                UserError::new(format!("{name} is replaced by a local package"))
                    .hint(format!(
                        "reset the replacement first (`pkglayer override reset {name}`)"
                    ))
                    .into(),
            );
        }
        origin.override_remove.insert(name.clone());
    }
    refuse_kernel(
        &kernel_packages(&sysroot.repo(), &layer.base_commit)?,
        names.iter().map(String::as_str),
        "removing",
    )?;
    Ok(origin)
}

/// `origin` with the local RPMs `files` replacing the base packages of their names; returns the
/// files for the transaction to import.
pub fn with_local_replacements(
    sysroot: &Sysroot,
    layer: &DeploymentLayer,
    origin: Origin,
    files: &[String],
    repos: &RepoOptions,
) -> Result<(Origin, Vec<LocalFile>)> {
    for file in files {
        if !(file.ends_with(".rpm") && Path::new(file).is_file()) {
            return Err(UserError::new(format!("{file}: no such .rpm file"))
                .hint("override replace takes paths of local .rpm files")
                .into());
        }
    }
    let (staged, local) =
        request::with_packages(sysroot, layer, Origin::new(""), files, false, repos)?;
    let mut origin = origin;
    let base = crate::rpmdb::packages_in_commit(&sysroot.repo(), &layer.base_commit)?;
    let kernel = kernel_packages(&sysroot.repo(), &layer.base_commit)?;
    for file in &local {
        let nevra = &file.nevra;
        if !base.iter().any(|p| p.name == nevra.name) {
            return Err(UserError::new(format!(
                "{nevra} replaces no base package: the base has no {}",
                nevra.name
            ))
            .hint(format!(
                "`pkglayer install {}` layers it",
                file.path.display()
            ))
            .into());
        }
        if origin.override_remove.contains(&nevra.name) {
            return Err(
                UserError::new(format!("base package {} is removed", nevra.name))
                    .hint(format!(
                        "reset the removal first (`pkglayer override reset {}`)",
                        nevra.name
                    ))
                    .into(),
            );
        }
        if ships_kernel(&file.path)? {
            refuse_kernel(
                std::slice::from_ref(&nevra.name),
                [nevra.name.as_str()],
                "replacing",
            )?;
        }
        refuse_kernel(&kernel, [nevra.name.as_str()], "replacing")?;
        origin
            .override_replace_local
            .retain(|old, _| old.name != nevra.name);
        origin
            .override_replace_local
            .insert(nevra.clone(), file.sha256.clone());
    }
    drop(staged);
    Ok((origin, local))
}

/// `origin` with the base packages `names` following the newest builds of repo `repo` (rpm-ostree's
/// `override replace --from repo=ID`). `from` is `repo=ID`.
pub fn with_remote_replacements(
    sysroot: &Sysroot,
    layer: &DeploymentLayer,
    mut origin: Origin,
    from: &str,
    names: &[String],
) -> Result<Origin> {
    let repo = from
        .strip_prefix("repo=")
        .filter(|id| !id.is_empty() && !id.contains(','))
        .ok_or_else(|| {
            UserError::new(format!("--from {from}: not a source pkglayer knows"))
                .hint("give the repo to take the packages from as --from repo=ID")
        })?;
    let base = crate::rpmdb::packages_in_commit(&sysroot.repo(), &layer.base_commit)?;
    for name in names {
        if name.ends_with(".rpm") {
            return Err(
                UserError::new(format!("{name}: --from takes names of base packages"))
                    .hint("replace a base package by a local file without --from")
                    .into(),
            );
        }
        if !base.iter().any(|p| p.name == *name) {
            return Err(UserError::new(format!("{name} is not a package of the base"))
                .hint("override replace takes names of base packages (`pkglayer db list` lists them)")
                .into());
        }
        if origin.override_remove.contains(name)
            || origin
                .override_replace_local
                .keys()
                .any(|n| n.name == *name)
            || origin
                .override_replace_remote
                .iter()
                .any(|(_, names)| names.contains(name))
        {
            return Err(UserError::new(format!("{name} is overridden already"))
                .hint(format!("reset it first (`pkglayer override reset {name}`)"))
                .into());
        }
    }
    refuse_kernel(
        &kernel_packages(&sysroot.repo(), &layer.base_commit)?,
        names.iter().map(String::as_str),
        "replacing",
    )?;
    match origin
        .override_replace_remote
        .iter_mut()
        .find(|(id, _)| id == repo)
    {
        Some((_, listed)) => listed.extend(names.iter().cloned()),
        None => origin
            .override_replace_remote
            .push((repo.to_string(), names.to_vec())),
    }
    Ok(origin)
}

/// `origin` without the overrides of `names` (base package names, or a replacement's NEVRA), or
/// without any with `all`.
pub fn without_overrides(mut origin: Origin, names: &[String], all: bool) -> Result<Origin> {
    if all {
        origin.override_remove.clear();
        origin.override_replace_local.clear();
        origin.override_replace_remote.clear();
        return Ok(origin);
    }
    for name in names {
        let replaced: Vec<Nevra> = origin
            .override_replace_local
            .keys()
            .filter(|n| n.name == *name || n.to_string() == *name)
            .cloned()
            .collect();
        let mut removed = origin.override_remove.remove(name);
        for (_, names) in origin.override_replace_remote.iter_mut() {
            let before = names.len();
            names.retain(|n| n != name);
            removed |= names.len() != before;
        }
        origin
            .override_replace_remote
            .retain(|(_, names)| !names.is_empty());
        for nevra in &replaced {
            origin.override_replace_local.remove(nevra);
        }
        if !removed && replaced.is_empty() {
            let mut overridden: Vec<String> = origin.override_remove.iter().cloned().collect();
            overridden.extend(origin.override_replace_local.keys().map(|n| n.name.clone()));
            overridden.extend(
                origin
                    .override_replace_remote
                    .iter()
                    .flat_map(|(_, names)| names.iter().cloned()),
            );
            return Err(UserError::new(format!("{name} has no override"))
                .hint(if overridden.is_empty() {
                    "no base package is removed or replaced".to_string()
                } else {
                    format!("overridden: {}", overridden.join(", "))
                })
                .into());
        }
    }
    Ok(origin)
}

/// Refuses overriding any of `names` that is in `kernel`: a tree whose kernel and initramfs
/// disagree must never be deployed, and pkglayer does not regenerate the initramfs.
fn refuse_kernel<'a>(
    kernel: &[String],
    names: impl IntoIterator<Item = &'a str>,
    what: &str,
) -> Result<()> {
    let hit: BTreeSet<&str> = names
        .into_iter()
        .filter(|n| kernel.iter().any(|k| k == n))
        .collect();
    if hit.is_empty() {
        return Ok(());
    }
    let hit: Vec<&str> = hit.into_iter().collect();
    Err(UserError::new(format!(
        "{what} {} is not supported: it ships the kernel or its modules ({KERNEL_DIR}…), and the initramfs must match the kernel",
        hit.join(", ")
    ))
    .hint("pkglayer does not regenerate the initramfs; a new kernel comes with the vendor's next base (`pkglayer upgrade`)")
    .into())
}

/// Refuses a plan that removes or replaces base packages `gone` when one is the kernel or its
/// modules, whatever asked for it (an origin another tool wrote, too): before anything is fetched.
pub(crate) fn refuse_kernel_changes(
    repo: &ostree::Repo,
    base_commit: &str,
    gone: &[&Nevra],
) -> Result<()> {
    if gone.is_empty() {
        return Ok(());
    }
    refuse_kernel(
        &kernel_packages(repo, base_commit)?,
        gone.iter().map(|n| n.name.as_str()),
        "removing or replacing",
    )
}

/// Names of the base packages with files under `/usr/lib/modules/` (the kernel, its modules).
fn kernel_packages(repo: &ostree::Repo, base_commit: &str) -> Result<Vec<String>> {
    let scratch = tempfile::tempdir().context("Creating a scratch directory")?;
    let dbpath = crate::rpmdb::checkout_rpmdb(repo, base_commit, scratch.path())?;
    let mut names: Vec<String> =
        crate::scripts::triggers::installed_owners(scratch.path(), &dbpath)?
            .into_iter()
            .filter(|(path, _)| path.starts_with(KERNEL_DIR))
            .filter_map(|(_, owner)| Nevra::parse(&owner).map(|n| n.name))
            .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// Whether the RPM at `path` has files under `/usr/lib/modules/`.
fn ships_kernel(path: &Path) -> Result<bool> {
    let (head, _) = crate::package_cache::read_head(path)?;
    let metadata = ::rpm::PackageMetadata::parse(&mut Cursor::new(&head))
        .with_context(|| format!("Reading {}", path.display()))?;
    Ok(metadata
        .get_file_paths()
        .unwrap_or_default()
        .iter()
        .any(|p| p.to_string_lossy().starts_with(KERNEL_DIR)))
}
