//! Carrying out a plan (pipeline steps 5–7): fetch and import what the package cache lacks, compose
//! the layered commit, deploy it.
//!
//! Everything before the deploy writes only new objects, cache refs and scratch space, so a failure
//! leaves the booted and pending deployments as they were.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::{Path, PathBuf};

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
use crate::repo::signature::{RpmKeyring, Verdict};
use crate::repo::{Fetcher, RepoMetadata};
use crate::request::LocalFile;
use crate::solver::{LOCAL_REPO, PlannedPackage};
use crate::sysroot::{Sysroot, SysrootLock};
use crate::users::Accounts;

/// Downloads run this many at a time.
const PARALLEL_DOWNLOADS: usize = 4;

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
    let repo = sysroot.repo();
    let (cached, downloaded) = ensure_cached(sysroot, plan, origin, progress)?;
    if options.download_only {
        return Ok(Outcome::Downloaded {
            imported: downloaded,
        });
    }

    let requested: Vec<String> = origin.requested.iter().cloned().collect();
    let commit = if plan.packages.is_empty() && requested.is_empty() {
        plan.base_commit.clone()
    } else {
        compose::compose(
            &repo,
            &Layer {
                base_commit: &plan.base_commit,
                packages: &cached,
                requested: &requested,
                inactive_requests: &plan.inactive_requests,
                state_digest: &plan.state_digest,
                skip_scripts: &origin.skip_scripts,
                id_allocations: &sysroot.state().id_allocations(),
            },
            progress,
        )?
    };
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

/// Makes sure every planned package is in the cache; returns them (plan order) and how many were
/// downloaded now.
fn ensure_cached(
    sysroot: &Sysroot,
    plan: &InstallPlan,
    origin: &Origin,
    progress: &dyn Progress,
) -> Result<(Vec<CachedPackage>, usize)> {
    let repo = sysroot.repo();
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
    if missing.is_empty() {
        return Ok((cached.into_iter().flatten().collect(), 0));
    }

    let folder = sysroot.cache().folder(CacheFolder::Downloads);
    std::fs::create_dir_all(&folder).with_context(|| format!("Creating {}", folder.display()))?;
    let wanted: Vec<&PlannedPackage> = missing.iter().map(|&i| &plan.packages[i]).collect();
    let total: u64 = wanted.iter().map(|p| p.download_size).sum();
    check_free_space(&folder, total)?;
    let files = {
        let _phase = PhaseGuard::start(progress, Phase::Download);
        progress.downloads_started(wanted.len(), total);
        let files = download_all(&folder, &wanted, &plan.repos, progress);
        progress.downloads_finished();
        files?
    };

    let _phase = PhaseGuard::start(progress, Phase::Import);
    check_signatures(plan, &missing, &files)?;
    for (&index, file) in missing.iter().zip(&files) {
        let package = &plan.packages[index];
        let repo_checksum = plan
            .repos
            .iter()
            .find(|r| r.id == package.repo)
            .map(|r| r.checksum.clone())
            .unwrap_or_default();
        let origin = PackageOrigin {
            repo: package.repo.clone(),
            repo_checksum,
        };
        cached[index] = Some(package_cache::import(
            &repo,
            file,
            Some(&package.nevra),
            &accounts,
            &origin,
        )?);
        let _ = std::fs::remove_file(file);
        crate::failpoint::hit("after-import");
    }
    Ok((cached.into_iter().flatten().collect(), missing.len()))
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

/// With `gpgcheck=1`, every downloaded package must carry a valid signature by one of its repo's
/// keys; one that does not is deleted and the whole operation refused before anything is imported.
fn check_signatures(plan: &InstallPlan, indexes: &[usize], files: &[PathBuf]) -> Result<()> {
    let mut keyrings: HashMap<&str, RpmKeyring> = HashMap::new();
    for (&index, file) in indexes.iter().zip(files) {
        let package = &plan.packages[index];
        let Some(repo) = plan
            .repos
            .iter()
            .find(|r| r.id == package.repo && r.gpgcheck)
        else {
            continue;
        };
        let keyring = match keyrings.entry(repo.id.as_str()) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => entry.insert(
                RpmKeyring::new(&repo.gpgkeys)
                    .with_context(|| format!("Loading the gpgkey of repo {}", repo.id))?,
            ),
        };
        if let Verdict::Untrusted(why) = keyring.check(file)? {
            let _ = std::fs::remove_file(file);
            return Err(crate::error::UserError::new(format!(
                "package {} from repo {} {why}",
                package.nevra, repo.id
            ))
            .hint("nothing was imported; check the repo's gpgkey=, or ask its owner: gpgcheck=1 refuses unsigned packages")
            .into());
        }
    }
    Ok(())
}

/// Refuses to start downloads the cache's filesystem has no room for (as the metadata declares them).
fn check_free_space(folder: &Path, needed: u64) -> Result<()> {
    let stat = rustix::fs::statvfs(folder)
        .with_context(|| format!("Reading the free space of {}", folder.display()))?;
    let free = stat.f_bavail.saturating_mul(stat.f_frsize);
    if needed <= free {
        return Ok(());
    }
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    Err(crate::error::UserError::new(format!(
        "the packages to download take {:.1} MiB, and {} has {:.1} MiB free",
        mib(needed),
        folder.display(),
        mib(free)
    ))
    .hint("free some space (`pkglayer cleanup --cache` helps), or check the repo: its metadata may declare wrong sizes")
    .into())
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

/// Downloads every package, a few at a time, each verified against the metadata's checksum.
fn download_all(
    folder: &Path,
    packages: &[&PlannedPackage],
    repos: &[RepoMetadata],
    progress: &dyn Progress,
) -> Result<Vec<PathBuf>> {
    let fetcher = Fetcher::new();
    let chunk = packages.len().div_ceil(PARALLEL_DOWNLOADS).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = packages
            .chunks(chunk)
            .map(|batch| {
                let fetcher = &fetcher;
                scope.spawn(move || {
                    batch
                        .iter()
                        .map(|package| {
                            let file = download_one(fetcher, folder, package, repos)?;
                            crate::failpoint::hit("after-download");
                            let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
                            progress.package_downloaded(&package.nevra.to_string(), size);
                            Ok(file)
                        })
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        let mut files = Vec::with_capacity(packages.len());
        for handle in handles {
            files.extend(handle.join().expect("a download thread panicked")?);
        }
        Ok(files)
    })
}

fn download_one(
    fetcher: &Fetcher,
    folder: &Path,
    package: &PlannedPackage,
    repos: &[RepoMetadata],
) -> Result<PathBuf> {
    let repo = repos
        .iter()
        .find(|r| r.id == package.repo)
        .with_context(|| {
            format!(
                "{} comes from repo {}, which is not loaded",
                package.nevra, package.repo
            )
        })?;
    let location = package
        .location
        .as_deref()
        .with_context(|| format!("repo {} gives no location for {}", repo.id, package.nevra))?;
    // A package is never larger than the metadata says; a server sending more is refused.
    let transfer = match package.download_size {
        0 => repo.transfer,
        size => repo.transfer.at_most(size),
    };
    let dest = folder.join(format!("{}.rpm", package.nevra));
    let partial = folder.join(format!("{}.rpm.partial", package.nevra));
    let verify = |path: &Path| -> Result<()> {
        match &package.checksum {
            Some(checksum) => checksum.verify_file(path),
            None => Ok(()),
        }
    };
    // Downloaded by an earlier run that failed later on: no need to fetch it again.
    if dest.is_file() && verify(&dest).is_ok() {
        return Ok(dest);
    }
    let mut failures = Vec::new();
    for mirror in &repo.mirrors {
        let url = format!("{mirror}{location}");
        // A partial file from an interrupted run is continued, not fetched again from the start.
        let attempt = fetcher
            .download_resuming(&url, &partial, &transfer)
            .and_then(|()| {
                verify(&partial).with_context(|| format!("{} from {url}", package.nevra))
            });
        match attempt {
            Ok(()) => {
                std::fs::rename(&partial, &dest)?;
                return Ok(dest);
            }
            Err(err) => {
                // Whatever is in the partial file now is not worth continuing.
                let _ = std::fs::remove_file(&partial);
                failures.push(format!("{err:#}"));
            }
        }
    }
    if failures.is_empty() {
        bail!(
            "repo {} has no mirror to download {} from",
            repo.id,
            package.nevra
        );
    }
    Err(crate::error::UserError::new(format!(
        "cannot download {}:\n  {}",
        package.nevra,
        failures.join("\n  ")
    ))
    .hint("check the network, or run `pkglayer refresh-md --force` if the repo changed")
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::{Checksum, Repomd, Transfer};
    use crate::rpm::Nevra;

    /// sha256 of the bytes `an rpm`.
    const SHA: &str = "67bc295808ec97358f17689221ccd1ba0731ef8217351b7272e498e70475a587";

    fn planned(checksum: Option<Checksum>) -> PlannedPackage {
        PlannedPackage {
            nevra: Nevra::parse("strace-6.1-1.x86_64").unwrap(),
            repo: "fedora".into(),
            download_size: 6,
            install_size: 6,
            location: Some("Packages/s/strace-6.1-1.x86_64.rpm".into()),
            checksum,
        }
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

    #[test]
    fn downloads_that_do_not_fit_are_refused_before_they_start() {
        let dir = tempfile::tempdir().unwrap();
        check_free_space(dir.path(), 0).unwrap();
        let err = check_free_space(dir.path(), u64::MAX).unwrap_err();
        let user = err.downcast_ref::<crate::error::UserError>().unwrap();
        assert!(
            user.message
                .starts_with("the packages to download take 17592186044416.0 MiB, and "),
            "{}",
            user.message
        );
    }

    fn repo_with_mirrors(mirrors: Vec<String>) -> RepoMetadata {
        RepoMetadata {
            id: "fedora".into(),
            priority: 99,
            cost: 1000,
            exclude: Vec::new(),
            includepkgs: Vec::new(),
            repomd: Repomd {
                revision: None,
                records: Vec::new(),
            },
            primary: PathBuf::from("primary.xml"),
            filelists: None,
            checksum: "d".repeat(64),
            mirrors,
            transfer: Transfer::default(),
            gpgcheck: false,
            gpgkeys: Vec::new(),
            fetched: false,
        }
    }

    /// A mirror holding `bytes` as the package of [`planned`], as a `file://` base URL.
    fn mirror(root: &Path, bytes: &[u8]) -> String {
        let packages = root.join("Packages/s");
        std::fs::create_dir_all(&packages).unwrap();
        std::fs::write(packages.join("strace-6.1-1.x86_64.rpm"), bytes).unwrap();
        format!("file://{}/", root.display())
    }

    #[test]
    fn a_download_tries_the_mirrors_in_turn_and_verifies_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("downloads");
        std::fs::create_dir(&folder).unwrap();
        let broken = mirror(&dir.path().join("broken"), b"an rpX");
        let good = mirror(&dir.path().join("good"), b"an rpm");
        let missing = format!("file://{}/", dir.path().join("missing").display());
        let repos = [repo_with_mirrors(vec![missing, broken, good])];
        let package = planned(Some(Checksum::new("sha256", SHA).unwrap()));

        let file = download_one(&Fetcher::new(), &folder, &package, &repos).unwrap();
        assert_eq!(file, folder.join("strace-6.1-1.x86_64.rpm"));
        assert_eq!(std::fs::read(&file).unwrap(), b"an rpm");
        assert!(!folder.join("strace-6.1-1.x86_64.rpm.partial").exists());

        // Downloaded before (a later step failed): kept, no mirror asked.
        let offline = [repo_with_mirrors(Vec::new())];
        assert_eq!(
            download_one(&Fetcher::new(), &folder, &package, &offline).unwrap(),
            file
        );
    }

    #[test]
    fn a_download_no_mirror_can_give_names_every_failure() {
        let dir = tempfile::tempdir().unwrap();
        let oversized = mirror(&dir.path().join("oversized"), b"an rpm, and more");
        let tampered = mirror(&dir.path().join("tampered"), b"an rpX");
        let repos = [repo_with_mirrors(vec![oversized, tampered])];
        let package = planned(Some(Checksum::new("sha256", SHA).unwrap()));
        let err = download_one(&Fetcher::new(), dir.path(), &package, &repos).unwrap_err();
        let message = format!("{err:#}");
        let failures: Vec<&str> = message.lines().collect();
        assert_eq!(failures.len(), 3, "{message}");
        assert_eq!(failures[0], "cannot download strace-6.1-1.x86_64:");
        assert!(
            failures[1].ends_with("is larger than the 6 bytes the repo metadata declares"),
            "{message}"
        );
        assert!(failures[2].contains("checksum mismatch"), "{message}");
        assert!(!dir.path().join("strace-6.1-1.x86_64.rpm.partial").exists());

        let none = [repo_with_mirrors(Vec::new())];
        let err = download_one(&Fetcher::new(), dir.path(), &package, &none).unwrap_err();
        assert_eq!(
            err.to_string(),
            "repo fedora has no mirror to download strace-6.1-1.x86_64 from"
        );
        let err = download_one(&Fetcher::new(), dir.path(), &package, &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "strace-6.1-1.x86_64 comes from repo fedora, which is not loaded"
        );
    }
}
