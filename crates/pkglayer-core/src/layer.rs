//! Carrying out a plan (pipeline steps 5–7): fetch and import what the package cache lacks, compose
//! the layered commit, deploy it.
//!
//! Everything before the deploy writes only new objects, cache refs and scratch space, so a failure
//! leaves the booted and pending deployments as they were.

use anyhow::{Context, Result, bail};
use fn_error_context::context;

use crate::compose::{self, Layer};
use crate::deploy;
use crate::layout::CacheFolder;
use crate::origin::Origin;
use crate::package_cache::{self, CachedPackage, PackageOrigin};
use crate::plan::InstallPlan;
use crate::progress::{Phase, PhaseGuard, Progress};
use crate::repo::repomd::ChecksumAlgorithm;
use crate::request::LocalFile;
use crate::solver::{LOCAL_REPO, PlannedPackage};
use crate::sysroot::{Sysroot, SysrootLock};
use crate::users::Accounts;
use crate::workspace::Workspace;

/// What applying a plan did.
#[derive(Debug)]
pub enum Outcome {
    /// The result would equal the current deployment; nothing was deployed.
    NoChange,
    /// `--download-only`: the packages are in the cache; nothing was deployed.
    Downloaded {
        /// Packages fetched from repos into the package cache.
        imported: usize,
    },
    /// A new deployment was written; it is the default at next boot.
    Deployed {
        /// `checksum.serial` of the new deployment.
        deployment: String,
        /// The deployed commit: the layered one, or the base when nothing is layered.
        commit: String,
        /// Packages fetched from repos for this operation.
        downloaded: usize,
        /// Packages taken from the package cache.
        reused: usize,
    },
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ApplyOptions {
    /// Fetch and import only.
    pub download_only: bool,
}

/// Applies `plan` with `origin` (the origin the new deployment gets). The caller holds the sysroot
/// lock and planned after taking it.
#[context("Layering")]
pub(crate) fn apply(
    sysroot: &Sysroot,
    lock: &SysrootLock,
    plan: &InstallPlan,
    origin: &Origin,
    options: ApplyOptions,
    progress: &dyn Progress,
) -> Result<Outcome> {
    if plan.unchanged && !options.download_only {
        return Ok(Outcome::NoChange);
    }
    let workspace = sysroot.workspace();
    let (cached, downloaded) = ensure_cached(&workspace, plan, origin, progress)?;
    if options.download_only {
        return Ok(Outcome::Downloaded {
            imported: downloaded,
        });
    }
    let commit = write_layer(&workspace, plan, origin, &cached, progress)?;
    let deployment = {
        let _phase = PhaseGuard::start(progress, Phase::Deploy);
        deploy::deploy_commit(sysroot, lock, &commit, origin)?
    };
    Ok(Outcome::Deployed {
        deployment: deploy::deployment_id(&deployment),
        commit,
        downloaded,
        reused: cached.len() - downloaded,
    })
}

/// What fetching and writing a layer did (`compose` reports it).
#[derive(Debug)]
pub struct Built {
    /// The layered commit (the base itself when nothing is layered).
    pub commit: String,
    /// Packages fetched from repos for it.
    pub downloaded: usize,
    /// Packages taken from the package cache.
    pub reused: usize,
}

/// Fetches what `plan` lacks and writes its layered commit into the workspace's repo, without
/// deploying it: what `compose` does on a build machine.
pub(crate) fn build(
    workspace: &Workspace,
    plan: &InstallPlan,
    origin: &Origin,
    progress: &dyn Progress,
) -> Result<Built> {
    let (cached, downloaded) = ensure_cached(workspace, plan, origin, progress)?;
    let commit = write_layer(workspace, plan, origin, &cached, progress)?;
    Ok(Built {
        commit,
        downloaded,
        reused: cached.len() - downloaded,
    })
}

/// Composes the layered commit of `plan` from the cached packages; the base itself when nothing is
/// layered or requested.
fn write_layer(
    workspace: &Workspace,
    plan: &InstallPlan,
    origin: &Origin,
    cached: &[CachedPackage],
    progress: &dyn Progress,
) -> Result<String> {
    let requested: Vec<String> = origin.requested.iter().cloned().collect();
    if plan.packages.is_empty() && requested.is_empty() && !origin.has_overrides() {
        return Ok(plan.base_commit.clone());
    }
    compose::compose(
        &workspace.repo(),
        &Layer {
            base_commit: &plan.base_commit,
            packages: cached,
            requested: &requested,
            inactive_requests: &plan.inactive_requests,
            state_digest: &plan.state_digest,
            skip_scripts: &origin.skip_scripts,
            removed_base: &plan.removed_base,
            replaced_base: &plan.replaced_base,
            inactive_overrides: &plan.inactive_overrides,
            id_allocations: &workspace.state().id_allocations(),
            checkouts: &workspace.checkouts(&plan.base_commit),
        },
        progress,
    )
}

/// Makes sure every planned package is in the cache; returns them (plan order) and how many were
/// downloaded now.
fn ensure_cached(
    workspace: &Workspace,
    plan: &InstallPlan,
    origin: &Origin,
    progress: &dyn Progress,
) -> Result<(Vec<CachedPackage>, usize)> {
    let repo = workspace.repo();
    let accounts = Accounts::of_commit(&repo, &plan.base_commit)?;
    let mut cached = Vec::with_capacity(plan.packages.len());
    let mut missing = Vec::new();
    for (index, package) in plan.packages.iter().enumerate() {
        if package.repo == LOCAL_REPO {
            cached.push(Some(local_package(
                &repo, plan, origin, package, &accounts,
            )?));
            continue;
        }
        let hit = cached_copy(&repo, package)?;
        if hit.is_none() {
            missing.push(index);
        }
        cached.push(hit);
    }
    if !missing.is_empty() {
        let folder = workspace.cache().folder(CacheFolder::Downloads);
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("Creating {}", folder.display()))?;
        let wanted: Vec<&PlannedPackage> = missing.iter().map(|&i| &plan.packages[i]).collect();
        let imported =
            crate::acquire::fetch_and_import(&repo, &folder, plan, &wanted, &accounts, progress)?;
        for (&index, package) in missing.iter().zip(imported) {
            cached[index] = Some(package);
        }
    }
    let cached: Vec<CachedPackage> = cached.into_iter().flatten().collect();
    crate::lockfile::check_fetched(&plan.locked_sha256, &cached)?;
    Ok((cached, missing.len()))
}

/// A local package of the plan from the package cache, imported now if this operation names its
/// file.
fn local_package(
    repo: &ostree::Repo,
    plan: &InstallPlan,
    origin: &Origin,
    package: &PlannedPackage,
    accounts: &Accounts,
) -> Result<CachedPackage> {
    let nevra = &package.nevra;
    let sha256 = origin
        .requested_local
        .get(nevra)
        .or_else(|| origin.override_replace_local.get(nevra))
        .with_context(|| format!("local package {nevra} is not requested"))?;
    if let Some(cached) = package_cache::lookup_local(repo, &package.nevra, sha256)? {
        return Ok(cached);
    }
    // Planning found it cached or named by this operation, under the same lock.
    let file = plan
        .local_files
        .iter()
        .find(|f| f.sha256 == *sha256)
        .with_context(|| format!("local package {nevra} is neither cached nor named now"))?;
    import_local(repo, file, accounts)
}

/// Imports a local RPM named by this operation into the package cache.
#[context("Importing local package {}", file.path.display())]
fn import_local(
    repo: &ostree::Repo,
    file: &LocalFile,
    accounts: &Accounts,
) -> Result<CachedPackage> {
    let origin = PackageOrigin {
        repo: LOCAL_REPO.to_string(),
        repo_checksum: String::new(),
    };
    let package = package_cache::import(repo, &file.path, Some(&file.nevra), accounts, &origin)?;
    if package.sha256 != file.sha256 {
        bail!(
            "{} changed while pkglayer was reading it",
            file.path.display()
        );
    }
    Ok(package)
}

/// The package cache's copy of a planned repo package, if it has one: the NEVRA imported before,
/// with the sha256 the repo's metadata gives (if it gives one).
pub(crate) fn cached_copy(
    repo: &ostree::Repo,
    package: &PlannedPackage,
) -> Result<Option<CachedPackage>> {
    Ok(package_cache::lookup(repo, &package.nevra)?.filter(|hit| matches_metadata(hit, package)))
}

fn matches_metadata(cached: &CachedPackage, planned: &PlannedPackage) -> bool {
    match &planned.checksum {
        Some(checksum) if checksum.algorithm == ChecksumAlgorithm::Sha256 => {
            cached.sha256 == checksum.hex
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::Checksum;
    use crate::rpm::Nevra;

    /// sha256 of the bytes `an rpm`.
    const SHA: &str = "67bc295808ec97358f17689221ccd1ba0731ef8217351b7272e498e70475a587";

    fn planned(checksum: Option<Checksum>) -> PlannedPackage {
        PlannedPackage::example(checksum)
    }

    fn cached(sha256: &str) -> CachedPackage {
        CachedPackage {
            nevra: Nevra::parse("strace-6.1-1.x86_64").unwrap(),
            commit: "c".repeat(64),
            sha256: sha256.into(),
        }
    }

    #[test]
    fn a_cached_package_matches_the_metadata_by_its_sha256() {
        let sha256 = Checksum::new("sha256", SHA).unwrap();
        assert!(matches_metadata(
            &cached(SHA),
            &planned(Some(sha256.clone()))
        ));
        assert!(!matches_metadata(
            &cached(&"0".repeat(64)),
            &planned(Some(sha256))
        ));
        // The cache keeps only sha256: another digest (or none) cannot tell builds apart.
        let sha512 = Checksum::new("sha512", &"1".repeat(128)).unwrap();
        assert!(matches_metadata(&cached(SHA), &planned(Some(sha512))));
        assert!(matches_metadata(&cached(SHA), &planned(None)));
    }
}
