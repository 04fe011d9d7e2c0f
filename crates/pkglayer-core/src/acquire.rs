//! Getting what a plan needs into the package cache: downloads a few at a time, each checked against
//! the repo metadata's checksum and (with `gpgcheck=1`) its repo's keys, and imports on as many
//! threads as there are cores, each package as soon as it has arrived. So the import of the last
//! package ends about when its download does.
//!
//! Each import thread works in a repo transaction of its own (on its own handle of the repo), and the
//! transactions are committed only once every package has arrived, passed its checks and been
//! imported: a refused or failed package leaves nothing imported.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};

use anyhow::{Context, Result, bail};
use ostree::gio;
use ostree::gio::prelude::*;

use crate::package_cache::{self, CachedPackage, PackageOrigin};
use crate::plan::InstallPlan;
use crate::progress::{Phase, PhaseGuard, Progress};
use crate::repo::signature::{RpmKeyring, Verdict};
use crate::repo::{Fetcher, RepoMetadata};
use crate::solver::PlannedPackage;
use crate::users::Accounts;

/// Downloads run this many at a time.
const PARALLEL_DOWNLOADS: usize = 4;
/// Overrides how many threads import (by default one a core); the benchmarks compare 1 and 2.
const IMPORT_THREADS_VAR: &str = "PKGLAYER_IMPORT_THREADS";

/// Downloads, checks and imports `wanted` (packages of `plan`), into `folder` then the package cache
/// of `repo`; returns them in the order of `wanted`.
pub(crate) fn fetch_and_import(
    repo: &ostree::Repo,
    folder: &Path,
    plan: &InstallPlan,
    wanted: &[&PlannedPackage],
    accounts: &Accounts,
    progress: &dyn Progress,
) -> Result<Vec<CachedPackage>> {
    let total: u64 = wanted.iter().map(|p| p.download_size).sum();
    check_free_space(folder, total)?;
    let keyrings = keyrings(plan, wanted)?;
    let threads = import_threads().min(wanted.len());
    // Each import thread opens the repo again: a repo handle is not shared between threads.
    let repo_path = repo
        .path()
        .path()
        .context("the sysroot's repo is a local directory")?;
    // Each arrived and checked package: its index in `wanted` and its file.
    let (arrived, queue) = mpsc::channel::<(usize, PathBuf)>();
    let queue = Mutex::new(queue);
    let failed = AtomicBool::new(false);
    let fetcher = Fetcher::new();

    let download_phase = PhaseGuard::start(progress, Phase::Download);
    progress.downloads_started(wanted.len(), total);
    let (downloads, imports) = std::thread::scope(|scope| {
        let chunk = wanted.len().div_ceil(PARALLEL_DOWNLOADS).max(1);
        let downloaders: Vec<_> = wanted
            .chunks(chunk)
            .enumerate()
            .map(|(batch, packages)| {
                let arrived = arrived.clone();
                let (fetcher, keyrings, failed) = (&fetcher, &keyrings, &failed);
                scope.spawn(move || -> Result<()> {
                    for (offset, package) in packages.iter().enumerate() {
                        if failed.load(Ordering::Relaxed) {
                            break;
                        }
                        let result = download_one(fetcher, folder, package, &plan.repos)
                            .and_then(|file| check_signature(keyrings, package, file));
                        let file = result.inspect_err(|_| failed.store(true, Ordering::Relaxed))?;
                        crate::failpoint::hit("after-download");
                        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
                        progress.package_downloaded(&package.nevra.to_string(), size);
                        // The importers are gone only when one failed; its error is reported.
                        let _ = arrived.send((batch * chunk + offset, file));
                    }
                    Ok(())
                })
            })
            .collect();
        drop(arrived);
        let importers: Vec<_> = (0..threads)
            .map(|_| {
                let (queue, failed, repo_path) = (&queue, &failed, &repo_path);
                scope.spawn(move || {
                    import_arrivals(repo_path, plan, wanted, queue, failed, accounts)
                })
            })
            .collect();
        let downloads: Vec<Result<()>> = downloaders
            .into_iter()
            .map(|h| h.join().expect("a download thread panicked"))
            .collect();
        progress.downloads_finished();
        drop(download_phase);
        // What is left to import once the last download is in.
        let _import_phase = PhaseGuard::start(progress, Phase::Import);
        let imports: Vec<Result<Importer>> = importers
            .into_iter()
            .map(|h| h.join().expect("an import thread panicked"))
            .collect();
        (downloads, imports)
    });

    let mut importers = Vec::new();
    let mut first_error = None;
    for result in downloads
        .into_iter()
        .map(|r| r.map(|()| None))
        .chain(imports.into_iter().map(|r| r.map(Some)))
    {
        match result {
            Ok(Some(importer)) => importers.push(importer),
            Ok(None) => {}
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    if let Some(err) = first_error {
        for importer in &importers {
            importer.abort();
        }
        return Err(err);
    }
    let mut cached: Vec<Option<CachedPackage>> = vec![None; wanted.len()];
    for importer in importers {
        for (index, package, file) in importer.commit()? {
            cached[index] = Some(package);
            let _ = std::fs::remove_file(file);
        }
        crate::failpoint::hit("after-import");
    }
    cached
        .into_iter()
        .zip(wanted)
        .map(|(package, planned)| {
            package
                .with_context(|| format!("{} was neither downloaded nor imported", planned.nevra))
        })
        .collect()
}

/// An import thread's work: its repo handle with the transaction its imports are in.
struct Importer {
    repo: Option<ostree::Repo>,
    imported: Vec<(usize, CachedPackage, PathBuf)>,
}

impl Importer {
    /// Commits the transaction; returns what was imported (index in `wanted`, package, file).
    fn commit(self) -> Result<Vec<(usize, CachedPackage, PathBuf)>> {
        if let Some(repo) = &self.repo {
            repo.commit_transaction(gio::Cancellable::NONE)
                .context("Committing the imported packages")?;
        }
        Ok(self.imported)
    }

    /// Drops the transaction and everything imported in it.
    fn abort(&self) {
        if let Some(repo) = &self.repo {
            let _ = repo.abort_transaction(gio::Cancellable::NONE);
        }
    }
}

/// Imports arrived packages from `queue` until the downloads are over (or something failed), in a
/// transaction of its own on a handle of its own of the repo at `repo`, left open for the caller.
fn import_arrivals(
    repo: &Path,
    plan: &InstallPlan,
    wanted: &[&PlannedPackage],
    queue: &Mutex<mpsc::Receiver<(usize, PathBuf)>>,
    failed: &AtomicBool,
    accounts: &Accounts,
) -> Result<Importer> {
    let mut importer = Importer {
        repo: None,
        imported: Vec::new(),
    };
    let result = (|| -> Result<()> {
        loop {
            // The lock is held only while waiting for the next package, not while importing it.
            let next = queue.lock().expect("the import queue").recv();
            let Ok((index, file)) = next else {
                return Ok(());
            };
            if failed.load(Ordering::Relaxed) {
                return Ok(());
            }
            let handle = match &importer.repo {
                Some(handle) => handle,
                None => importer.repo.insert(open_transaction(repo)?),
            };
            let package = wanted[index];
            let origin = PackageOrigin {
                repo: package.repo.clone(),
                repo_checksum: plan
                    .repos
                    .iter()
                    .find(|r| r.id == package.repo)
                    .map(|r| r.checksum.clone())
                    .unwrap_or_default(),
            };
            let cached = package_cache::import_in_transaction(
                handle,
                &file,
                Some(&package.nevra),
                accounts,
                &origin,
            )?;
            importer.imported.push((index, cached, file));
        }
    })();
    match result {
        Ok(()) => Ok(importer),
        Err(err) => {
            failed.store(true, Ordering::Relaxed);
            importer.abort();
            Err(err)
        }
    }
}

/// A handle of its own on the repo at `path` (transactions belong to a handle), in a new
/// transaction.
fn open_transaction(path: &Path) -> Result<ostree::Repo> {
    let handle = ostree::Repo::new_for_path(path);
    handle.open(gio::Cancellable::NONE)?;
    handle.prepare_transaction(gio::Cancellable::NONE)?;
    Ok(handle)
}

/// How many threads import: one a core, unless [`IMPORT_THREADS_VAR`] says otherwise.
fn import_threads() -> usize {
    std::env::var(IMPORT_THREADS_VAR)
        .ok()
        .and_then(|value| value.parse().ok())
        .filter(|&threads| threads > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// The keyrings of the `gpgcheck=1` repos `wanted` come from, by repo id.
fn keyrings(plan: &InstallPlan, wanted: &[&PlannedPackage]) -> Result<HashMap<String, RpmKeyring>> {
    let mut keyrings = HashMap::new();
    for repo in plan.repos.iter().filter(|r| r.gpgcheck) {
        if keyrings.contains_key(&repo.id) || !wanted.iter().any(|p| p.repo == repo.id) {
            continue;
        }
        let keyring = RpmKeyring::new(&repo.gpgkeys)
            .with_context(|| format!("Loading the gpgkey of repo {}", repo.id))?;
        keyrings.insert(repo.id.clone(), keyring);
    }
    Ok(keyrings)
}

/// With `gpgcheck=1`, a downloaded package must carry a valid signature by one of its repo's keys;
/// one that does not is deleted and the operation refused, with nothing imported.
fn check_signature(
    keyrings: &HashMap<String, RpmKeyring>,
    package: &PlannedPackage,
    file: PathBuf,
) -> Result<PathBuf> {
    let Some(keyring) = keyrings.get(&package.repo) else {
        return Ok(file);
    };
    if let Verdict::Untrusted(why) = keyring.check(&file)? {
        let _ = std::fs::remove_file(&file);
        return Err(crate::error::UserError::new(format!(
            "package {} from repo {} {why}",
            package.nevra, package.repo
        ))
        .hint("nothing was imported; check the repo's gpgkey=, or ask its owner: gpgcheck=1 refuses unsigned packages")
        .into());
    }
    Ok(file)
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

    /// sha256 of the bytes `an rpm`.
    const SHA: &str = "67bc295808ec97358f17689221ccd1ba0731ef8217351b7272e498e70475a587";

    fn planned(checksum: Option<Checksum>) -> PlannedPackage {
        PlannedPackage::example(checksum)
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
            modules: None,
            module_hotfixes: false,
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
