//! Editing the request: what the origin asks for after an install or an uninstall.
//!
//! Nothing here writes: a local RPM named on the command line is read (NEVRA, digest, signature) and
//! only imported into the package cache when the transaction is applied, so a dry run changes nothing.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use fn_error_context::context;

use crate::commit_metadata::DeploymentLayer;
use crate::error::UserError;
use crate::layout::CacheFolder;
use crate::origin::Origin;
use crate::repo::signature::{RpmKeyring, Verdict};
use crate::repo::{self, RepoOptions, host::load_repos};
use crate::rpm::Nevra;
use crate::sysroot::Sysroot;

/// A local RPM file named in an install.
#[derive(Debug, Clone)]
pub struct LocalFile {
    pub(crate) path: PathBuf,
    pub(crate) nevra: Nevra,
    /// sha256 of the file: what identifies a local package (two builds may share a NEVRA).
    pub sha256: String,
}

/// `origin`'s request plus `new`. A package that is already requested is an error, or skipped with
/// `idempotent`. An existing `*.rpm` path is a local package, requested as `SHA256:NEVRA` and
/// returned for the transaction to import.
///
/// When a repo with `gpgcheck=1` has its keys at hand (cached with its metadata, or `file://`), a
/// local RPM must carry a valid signature by one of them.
pub fn with_packages(
    sysroot: &Sysroot,
    layer: &DeploymentLayer,
    mut origin: Origin,
    new: &[String],
    idempotent: bool,
    repos: &RepoOptions,
) -> Result<(Origin, Vec<LocalFile>)> {
    let mut local = Vec::new();
    // Built once, for the first local file: `None` inside when no gpgcheck repo has keys at hand.
    let mut keyring: Option<Option<RpmKeyring>> = None;
    for request in new {
        let path = Path::new(request);
        if request.ends_with(".rpm") && request.contains('/') && !path.is_file() {
            return Err(UserError::new(format!("local package {request}: no such file"))
                .hint("give the path of an existing .rpm file, or a package name to install from the repos")
                .into());
        }
        if request.ends_with(".rpm") && path.is_file() {
            let keyring = match keyring {
                Some(ref built) => built,
                None => keyring.insert(local_keyring(sysroot, layer, repos)?),
            };
            if let Some(keyring) = keyring {
                check_local_signature(keyring, path)?;
            }
            let file = read_local_rpm(path)?;
            let nevra = file.nevra.clone();
            let earlier = origin
                .requested_local
                .insert(nevra.clone(), file.sha256.clone());
            if earlier.is_some() && !idempotent {
                return Err(UserError::new(format!("{nevra} is already requested"))
                    .hint("pass --idempotent to accept this")
                    .into());
            }
            local.push(file);
            continue;
        }
        if !origin.requested.insert(request.clone()) && !idempotent {
            return Err(UserError::new(format!("{request} is already requested"))
                .hint("`pkglayer status` lists what is layered; pass --idempotent to accept this")
                .into());
        }
    }
    Ok((origin, local))
}

/// The NEVRA and digest of a local RPM file, from its header; the payload is checked at import.
/// The file is read as a stream.
#[context("Reading local package {}", path.display())]
pub(crate) fn read_local_rpm(path: &Path) -> Result<LocalFile> {
    let (head, _) = crate::package_cache::read_head(path)?;
    let metadata =
        ::rpm::PackageMetadata::parse(&mut Cursor::new(&head)).context("not a readable RPM")?;
    let file = std::fs::File::open(path)?;
    let sha256 = repo::repomd::ChecksumAlgorithm::Sha256.digest(std::io::BufReader::new(file))?;
    Ok(LocalFile {
        path: path.to_path_buf(),
        nevra: Nevra::of_header(&metadata)?,
        sha256,
    })
}

/// The keys of the `gpgcheck=1` repos at hand (cached with their metadata, or `file://`), if any.
fn local_keyring(
    sysroot: &Sysroot,
    layer: &DeploymentLayer,
    repos: &RepoOptions,
) -> Result<Option<RpmKeyring>> {
    let mut keys = Vec::new();
    for config in load_repos(&sysroot.workspace(), repos, &layer.base_commit)?
        .iter()
        .filter(|r| r.enabled && r.gpgcheck)
    {
        let cached =
            repo::metadata::cached_keys(&sysroot.cache().folder(CacheFolder::RepoMetadata), config);
        if cached.is_empty() {
            keys.extend(
                config
                    .gpgkeys
                    .iter()
                    .filter_map(|url| url.strip_prefix("file://"))
                    .map(PathBuf::from),
            );
        } else {
            keys.extend(cached);
        }
    }
    if keys.is_empty() {
        return Ok(None);
    }
    Ok(Some(RpmKeyring::new(&keys)?))
}

/// Refuses a local RPM that `keyring` does not vouch for.
fn check_local_signature(keyring: &RpmKeyring, path: &Path) -> Result<()> {
    if let Verdict::Untrusted(why) = keyring.check(path)? {
        return Err(UserError::new(format!("local package {} {why}", path.display()))
            .hint("local packages are checked against the keys of the repos with gpgcheck=1; sign it with one of them")
            .into());
    }
    Ok(())
}

/// `origin`'s request without `names` (or without anything, with `all`). Only requested packages can
/// go — by name, or by the NEVRA a local package was requested as: a base package or a package
/// layered as a dependency is an error that says which it is.
pub fn without_packages(
    sysroot: &Sysroot,
    layer: &DeploymentLayer,
    mut origin: Origin,
    names: &[String],
    all: bool,
) -> Result<Origin> {
    if all {
        origin.requested.clear();
        origin.requested_local.clear();
        return Ok(origin);
    }
    for name in names {
        if origin.requested.remove(name) {
            continue;
        }
        let local = origin
            .requested_local
            .keys()
            .find(|nevra| {
                nevra.to_string() == *name
                    || nevra.name == *name
                    || crate::solver::matches_spec(name, nevra)
            })
            .cloned();
        if let Some(nevra) = local {
            origin.requested_local.remove(&nevra);
            continue;
        }
        return Err(not_requested(sysroot, layer, &origin, name)?.into());
    }
    Ok(origin)
}

/// Why `name` cannot be uninstalled: a dependency, part of the base, or unknown.
fn not_requested(
    sysroot: &Sysroot,
    layer: &DeploymentLayer,
    origin: &Origin,
    name: &str,
) -> Result<UserError> {
    let layered_dependency = layer.packages.iter().find(|p| p.name == name);
    if let Some(nevra) = layered_dependency {
        return Ok(UserError::new(format!(
            "{name} was not requested: {nevra} is layered as a dependency of what was"
        ))
        .hint("uninstall the requested package that needs it; it then goes by itself"));
    }
    let in_base = crate::rpmdb::packages_in_commit(&sysroot.repo(), &layer.base_commit)?
        .into_iter()
        .find(|p| p.name == name);
    Ok(match in_base {
        Some(nevra) => UserError::new(format!(
            "{name} is part of the base image ({nevra}), not layered"
        ))
        .hint(format!(
            "uninstall removes only layered packages; `pkglayer override remove {name}` removes a base package"
        )),
        None => {
            let requested: Vec<String> = origin
                .requested
                .iter()
                .cloned()
                .chain(origin.requested_local.keys().map(ToString::to_string))
                .collect();
            UserError::new(format!("{name} is not layered")).hint(format!(
                "requested packages: {}",
                if requested.is_empty() {
                    "none".to_string()
                } else {
                    requested.join(", ")
                }
            ))
        }
    })
}
