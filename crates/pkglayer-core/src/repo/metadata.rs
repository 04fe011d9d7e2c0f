//! Fetching repo metadata into the cache, and reading it back.
//!
//! Each repo has a folder `<id>-<hash of its URLs>/` in the metadata cache folder
//! ([`crate::layout::CacheFolder::RepoMetadata`]) holding
//! `repomd.xml`, the metadata files it names (verified against its checksums), `mirrors` (the base
//! URLs packages are fetched from) and a `fetched` stamp whose age is compared with `metadata_expire`.
//! A fetch is assembled in scratch space and swapped in whole, so a failed or corrupt download leaves
//! the cached copy exactly as it was.
//!
//! Filelists are not part of a sync: they are large (tens of MiB on Fedora) and rarely needed.
//! [`fetch_filelists`] brings them into the same folder when resolution needs a path that primary
//! metadata does not list, as dnf5 and rpm-ostree do.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use sha2::Digest;

use super::config::RepoConfig;
use super::fetch::{Fetcher, Transfer};
use super::mirrors::{parse_metalink, parse_mirrorlist};
use super::repomd::{Checksum, ChecksumAlgorithm, Repomd};
use super::signature;
use crate::error::UserError;

/// Where a repo's cache keeps its `gpgkey=` keys.
const KEYS_FOLDER: &str = "keys";
/// Metadata kinds a sync fetches: what the solver always reads (module metadata included), plus
/// updateinfo kept for later use. Filelists come only on demand ([`fetch_filelists`]).
const KINDS: [&str; 3] = ["primary", "modules", "updateinfo"];

/// How much to trust the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Reuse metadata younger than the repo's `metadata_expire`; fetch the rest.
    WhileFresh,
    /// Check every repo again (`refresh-md --force`).
    Refresh,
    /// Never touch the network; fail for a repo with nothing cached (`--cache-only`).
    CacheOnly,
}

/// A repo's metadata, on disk and verified.
#[derive(Debug, Clone)]
pub struct RepoMetadata {
    /// The repo's id, its `[id]` in the `.repo` file.
    pub id: String,
    pub(crate) priority: i32,
    pub(crate) cost: i32,
    /// The repo's `exclude=` and `includepkgs=` package specs.
    pub exclude: Vec<String>,
    pub(crate) includepkgs: Vec<String>,
    /// Its parsed `repomd.xml`.
    pub repomd: Repomd,
    pub(crate) primary: PathBuf,
    /// `filelists.xml…`, once fetched ([`fetch_filelists`]); the repomd may name one regardless.
    pub(crate) filelists: Option<PathBuf>,
    /// `modules.yaml…`, when the repo carries modules.
    pub(crate) modules: Option<PathBuf>,
    /// `module_hotfixes=1`: module filtering leaves its packages alone.
    pub(crate) module_hotfixes: bool,
    /// sha256 of `repomd.xml`: names this exact state of the repo (cache keys, state digests).
    pub checksum: String,
    /// Base URLs to fetch packages from, in order of preference.
    pub mirrors: Vec<String>,
    /// How to fetch from it (packages too).
    pub transfer: Transfer,
    /// `gpgcheck=1`: packages must be signed by one of `gpgkeys`.
    pub gpgcheck: bool,
    /// The repo's `gpgkey=` keys, as fetched with the metadata.
    pub gpgkeys: Vec<PathBuf>,
    /// Whether this call downloaded it (false: reused from the cache).
    pub fetched: bool,
}

/// What syncing a set of repos gave.
#[derive(Debug, Default)]
pub struct SyncReport {
    /// The enabled repos whose metadata is at hand.
    pub repos: Vec<RepoMetadata>,
    /// Repos with `skip_if_unavailable=1` that failed: id and the reason.
    pub skipped: Vec<SkippedRepo>,
}

/// A repo with `skip_if_unavailable=1` whose metadata could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRepo {
    /// The repo's id.
    pub id: String,
    /// What went wrong, as an error chain.
    pub reason: String,
}

/// Brings the metadata of every enabled repo into the metadata cache `folder`, in parallel.
pub fn sync_repos(
    folder: &Path,
    repos: &[RepoConfig],
    freshness: Freshness,
    fetcher: &Fetcher,
) -> Result<SyncReport> {
    std::fs::create_dir_all(folder)
        .with_context(|| format!("Creating the metadata cache {}", folder.display()))?;
    let enabled: Vec<&RepoConfig> = repos.iter().filter(|r| r.enabled).collect();
    let results: Vec<Result<RepoMetadata>> = std::thread::scope(|scope| {
        let handles: Vec<_> = enabled
            .iter()
            .map(|repo| scope.spawn(move || sync_one(folder, repo, freshness, fetcher)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a repo sync thread panicked"))
            .collect()
    });

    let mut report = SyncReport::default();
    for (repo, result) in enabled.into_iter().zip(results) {
        match result {
            Ok(metadata) => report.repos.push(metadata),
            Err(err) if repo.skip_if_unavailable => {
                report.skipped.push(SkippedRepo {
                    id: repo.id.clone(),
                    reason: format!("{err:#}"),
                });
            }
            Err(err) => return Err(err),
        }
    }
    Ok(report)
}

/// The cache folder of one repo: its id plus a hash of where it comes from, so that pointing a repo
/// at other URLs never reuses the old data.
fn repo_dir(folder: &Path, repo: &RepoConfig) -> PathBuf {
    let mut hasher = sha2::Sha256::new();
    for source in repo
        .baseurls
        .iter()
        .chain(&repo.metalink)
        .chain(&repo.mirrorlist)
    {
        hasher.update(source.as_bytes());
        hasher.update(b"\n");
    }
    let hash = hex::encode(hasher.finalize());
    folder.join(format!("{}-{}", repo.id, &hash[..16]))
}

fn sync_one(
    folder: &Path,
    repo: &RepoConfig,
    freshness: Freshness,
    fetcher: &Fetcher,
) -> Result<RepoMetadata> {
    let dir = repo_dir(folder, repo);
    let cached = match (freshness, load_cached(&dir, repo).ok()) {
        (Freshness::CacheOnly, Some(cached)) => return Ok(cached),
        (Freshness::CacheOnly, None) => {
            return Err(UserError::new(format!("repo {} has no cached metadata", repo.id))
                .hint("run without --cache-only, or `pkglayer refresh-md`, while the repo is reachable")
                .into());
        }
        (Freshness::WhileFresh, Some(cached)) if is_fresh(&dir, repo) => return Ok(cached),
        (_, cached) => cached,
    };

    let (mirrors, expected_repomd) = resolve_mirrors(repo, fetcher)?;
    let mut failures = Vec::new();
    for mirror in &mirrors {
        match fetch_from_mirror(
            folder,
            &dir,
            repo,
            mirror,
            &mirrors,
            &expected_repomd,
            cached.as_ref(),
            fetcher,
        ) {
            Ok(metadata) => return Ok(metadata),
            Err(err) => {
                tracing::info!("repo {}: mirror {mirror} failed: {err:#}", repo.id);
                failures.push(format!("{mirror}: {err:#}"));
            }
        }
    }
    Err(UserError::new(format!(
        "cannot fetch metadata of repo {}:\n  {}",
        repo.id,
        failures.join("\n  ")
    ))
    .hint(format!(
        "check the network and the repo's URLs in {}; set skip_if_unavailable=1 there to go on without it",
        repo.file.display()
    ))
    .into())
}

/// The base URLs to try, and the hashes a metalink requires of repomd.xml.
fn resolve_mirrors(repo: &RepoConfig, fetcher: &Fetcher) -> Result<(Vec<String>, Vec<Checksum>)> {
    if !repo.baseurls.is_empty() {
        return Ok((
            repo.baseurls.iter().map(|u| with_slash(u)).collect(),
            Vec::new(),
        ));
    }
    if let Some(url) = &repo.metalink {
        let text = fetcher
            .get_text(url, &Transfer::of(repo))
            .with_context(|| format!("fetching the metalink of repo {}", repo.id))?;
        let metalink =
            parse_metalink(&text).with_context(|| format!("metalink {url} of repo {}", repo.id))?;
        return Ok((metalink.mirrors, metalink.repomd_hashes));
    }
    if let Some(url) = &repo.mirrorlist {
        let text = fetcher
            .get_text(url, &Transfer::of(repo))
            .with_context(|| format!("fetching the mirrorlist of repo {}", repo.id))?;
        let mirrors: Vec<String> = parse_mirrorlist(&text)
            .iter()
            .map(|u| with_slash(u))
            .collect();
        if mirrors.is_empty() {
            bail!("mirrorlist {url} of repo {} lists no mirror", repo.id);
        }
        return Ok((mirrors, Vec::new()));
    }
    bail!("repo {} has no baseurl, metalink or mirrorlist", repo.id)
}

#[allow(clippy::too_many_arguments)]
fn fetch_from_mirror(
    folder: &Path,
    dir: &Path,
    repo: &RepoConfig,
    mirror: &str,
    mirrors: &[String],
    expected_repomd: &[Checksum],
    cached: Option<&RepoMetadata>,
    fetcher: &Fetcher,
) -> Result<RepoMetadata> {
    let staging = tempfile::Builder::new()
        .prefix(&format!(".staging-{}-", repo.id))
        .tempdir_in(folder)
        .context("Creating a staging folder for metadata")?;
    let repomd_path = staging.path().join("repomd.xml");
    fetcher.download(
        &format!("{mirror}repodata/repomd.xml"),
        &repomd_path,
        &Transfer::of(repo),
    )?;
    for hash in expected_repomd {
        hash.verify_file(&repomd_path)
            .context("repomd.xml does not match the metalink")?;
    }
    // The keys decide whether this repomd.xml (and later the packages) are to be believed.
    let keys_dir = staging.path().join(KEYS_FOLDER);
    let keys = fetch_keys(repo, &keys_dir, fetcher)?;
    if repo.repo_gpgcheck {
        let signature = staging.path().join("repomd.xml.asc");
        fetcher
            .download(
                &format!("{mirror}repodata/repomd.xml.asc"),
                &signature,
                &Transfer::of(repo),
            )
            .context("repo_gpgcheck=1, and the signature of repomd.xml cannot be fetched")?;
        if let signature::Verdict::Untrusted(why) =
            signature::check_detached(&keys, &repomd_path, &signature)?
        {
            bail!("repomd.xml {why}");
        }
    }
    let checksum = sha256_file(&repomd_path)?;

    // Same repomd as cached: the metadata files are the same too; only the stamp (and the keys,
    // which the repo's file may name anew) move.
    if let Some(cached) = cached.filter(|c| c.checksum == checksum) {
        let cached_keys = dir.join(KEYS_FOLDER);
        let _ = std::fs::remove_dir_all(&cached_keys);
        if keys_dir.exists() {
            std::fs::rename(&keys_dir, &cached_keys)
                .with_context(|| format!("Installing {}", cached_keys.display()))?;
        }
        write_stamp(dir, mirrors)?;
        return Ok(RepoMetadata {
            mirrors: mirrors.to_vec(),
            gpgcheck: repo.gpgcheck,
            gpgkeys: list_keys(&cached_keys),
            ..cached.clone()
        });
    }

    let text = std::fs::read_to_string(&repomd_path).context("repomd.xml is not text")?;
    let repomd = Repomd::parse(&text)?;
    if repomd.record("primary").is_none() {
        bail!("{mirror}repodata/repomd.xml names no primary metadata");
    }
    for record in KINDS.iter().filter_map(|kind| repomd.record(kind)) {
        let url = format!("{mirror}{}", record.location);
        let dest = staging.path().join(file_name(&record.location)?);
        fetcher.download(&url, &dest, &Transfer::of(repo))?;
        record
            .checksum
            .verify_file(&dest)
            .with_context(|| format!("{} metadata of repo {} from {url}", record.kind, repo.id))?;
    }
    write_stamp(staging.path(), mirrors)?;
    swap_into_place(staging, dir)?;
    let mut metadata = load_cached(dir, repo)?;
    metadata.fetched = true;
    Ok(metadata)
}

/// Brings the filelists of `repos` (those whose repomd names one) into the metadata cache, from the
/// mirrors their metadata came from, verified against repomd.xml; sets each repo's `filelists`.
/// Repos that have theirs already are left alone. Returns the ids of the repos fetched for.
///
/// Dry runs take no lock, so two processes may fetch the same file: each writes a file of its own
/// and renames it into place, and a complete, verified file is all either leaves.
pub fn fetch_filelists(
    repos: &mut [RepoMetadata],
    freshness: Freshness,
    fetcher: &Fetcher,
) -> Result<Vec<String>> {
    let mut fetched = Vec::new();
    for repo in repos.iter_mut().filter(|r| r.filelists.is_none()) {
        let Some(record) = repo.repomd.record("filelists").cloned() else {
            continue;
        };
        let dir = repo
            .primary
            .parent()
            .context("cached metadata lives in a folder")?
            .to_path_buf();
        let dest = dir.join(file_name(&record.location)?);
        if freshness == Freshness::CacheOnly {
            return Err(UserError::new(format!(
                "resolving needs the file lists of repo {}, and they are not cached",
                repo.id
            ))
            .hint("run without --cache-only while the repo is reachable (a path request or a path dependency needs them)")
            .into());
        }
        let partial = tempfile::Builder::new()
            .prefix(".filelists-")
            .tempfile_in(&dir)
            .with_context(|| format!("Creating a file in {}", dir.display()))?;
        let mut failures = Vec::new();
        for mirror in &repo.mirrors {
            let url = format!("{mirror}{}", record.location);
            let attempt = fetcher
                .download(&url, partial.path(), &repo.transfer)
                .and_then(|()| record.checksum.verify_file(partial.path()));
            match attempt {
                Ok(()) => {
                    failures.clear();
                    break;
                }
                Err(err) => failures.push(format!("{url}: {err:#}")),
            }
        }
        if !failures.is_empty() || repo.mirrors.is_empty() {
            return Err(UserError::new(format!(
                "cannot fetch the file lists of repo {}:\n  {}",
                repo.id,
                failures.join("\n  ")
            ))
            .hint("a path request or a path dependency needs them; check the network, or `pkglayer refresh-md --force` if the repo changed")
            .into());
        }
        partial
            .persist(&dest)
            .with_context(|| format!("Installing {}", dest.display()))?;
        repo.filelists = Some(dest);
        fetched.push(repo.id.clone());
    }
    Ok(fetched)
}

/// Fetches the repo's `gpgkey=` keys into `dest` when it checks signatures; returns their paths.
fn fetch_keys(repo: &RepoConfig, dest: &Path, fetcher: &Fetcher) -> Result<Vec<PathBuf>> {
    if !(repo.gpgcheck || repo.repo_gpgcheck) {
        return Ok(Vec::new());
    }
    if repo.gpgkeys.is_empty() {
        return Err(UserError::new(format!(
            "repo {} checks signatures (gpgcheck or repo_gpgcheck) but names no gpgkey",
            repo.id
        ))
        .hint(format!(
            "add gpgkey=URL of the repo's public key to {}",
            repo.file.display()
        ))
        .into());
    }
    std::fs::create_dir_all(dest)?;
    let mut keys = Vec::new();
    for (index, url) in repo.gpgkeys.iter().enumerate() {
        let path = dest.join(format!("{index}.asc"));
        fetcher
            .download(url, &path, &Transfer::of(repo))
            .with_context(|| format!("fetching gpgkey {url} of repo {}", repo.id))?;
        keys.push(path);
    }
    Ok(keys)
}

/// The `gpgkey=` keys cached with `repo`'s metadata in the metadata cache `folder` (none before its
/// first sync).
pub fn cached_keys(folder: &Path, repo: &RepoConfig) -> Vec<PathBuf> {
    list_keys(&repo_dir(folder, repo).join(KEYS_FOLDER))
}

/// The key files in `dir`, in order.
fn list_keys(dir: &Path) -> Vec<PathBuf> {
    let mut keys: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .collect();
    keys.sort();
    keys
}

/// Replaces `dir` with the staged folder; the old copy goes only once the new one is in place.
fn swap_into_place(staging: tempfile::TempDir, dir: &Path) -> Result<()> {
    let staged = staging.keep();
    if dir.exists() {
        let old = dir.with_extension("old");
        let _ = std::fs::remove_dir_all(&old);
        std::fs::rename(dir, &old).with_context(|| format!("Moving {} aside", dir.display()))?;
        std::fs::rename(&staged, dir).with_context(|| format!("Installing {}", dir.display()))?;
        std::fs::remove_dir_all(&old).with_context(|| format!("Removing {}", old.display()))?;
    } else {
        std::fs::rename(&staged, dir).with_context(|| format!("Installing {}", dir.display()))?;
    }
    Ok(())
}

/// Reads a repo's cached metadata; fails when anything it needs is missing.
fn load_cached(dir: &Path, repo: &RepoConfig) -> Result<RepoMetadata> {
    let repomd_path = dir.join("repomd.xml");
    let text = std::fs::read_to_string(&repomd_path)
        .with_context(|| format!("Reading {}", repomd_path.display()))?;
    let repomd = Repomd::parse(&text)?;
    let local = |kind: &str| -> Result<Option<PathBuf>> {
        let Some(record) = repomd.record(kind) else {
            return Ok(None);
        };
        let path = dir.join(file_name(&record.location)?);
        if !path.is_file() {
            bail!("{} is missing from the cache", path.display());
        }
        Ok(Some(path))
    };
    let primary = local("primary")?.context("the cached repomd.xml names no primary")?;
    // Fetched on demand: missing is normal.
    let filelists = match repomd.record("filelists") {
        Some(record) => Some(dir.join(file_name(&record.location)?)).filter(|p| p.is_file()),
        None => None,
    };
    let modules = local("modules")?;
    let mirrors = std::fs::read_to_string(dir.join("mirrors"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    Ok(RepoMetadata {
        id: repo.id.clone(),
        priority: repo.priority,
        cost: repo.cost,
        exclude: repo.exclude.clone(),
        includepkgs: repo.includepkgs.clone(),
        checksum: sha256_file(&repomd_path)?,
        repomd,
        primary,
        filelists,
        modules,
        module_hotfixes: repo.module_hotfixes,
        mirrors,
        transfer: Transfer::of(repo),
        gpgcheck: repo.gpgcheck,
        gpgkeys: list_keys(&dir.join(KEYS_FOLDER)),
        fetched: false,
    })
}

fn is_fresh(dir: &Path, repo: &RepoConfig) -> bool {
    let Some(expire) = repo.metadata_expire else {
        return true;
    };
    std::fs::metadata(dir.join("fetched"))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| SystemTime::now().duration_since(modified).ok())
        .is_some_and(|age| age < expire)
}

/// Records when the metadata was last confirmed, and from which mirrors packages can come.
fn write_stamp(dir: &Path, mirrors: &[String]) -> Result<()> {
    std::fs::write(dir.join("mirrors"), mirrors.join("\n") + "\n")?;
    std::fs::write(dir.join("fetched"), b"")?;
    // Rewriting an existing file moves its mtime; that is the stamp.
    let now = std::fs::FileTimes::new().set_modified(SystemTime::now());
    std::fs::File::options()
        .write(true)
        .open(dir.join("fetched"))?
        .set_times(now)?;
    Ok(())
}

/// The last path component of a metadata location, refusing anything that could climb out.
fn file_name(location: &str) -> Result<&str> {
    match location.rsplit('/').next() {
        Some(name) if !name.is_empty() && name != ".." && name != "." => Ok(name),
        _ => bail!("repomd.xml names an unusable location {location:?}"),
    }
}

fn with_slash(url: &str) -> String {
    if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    }
}

fn sha256_file(path: &Path) -> Result<String> {
    let file = std::fs::File::open(path).with_context(|| format!("Opening {}", path.display()))?;
    ChecksumAlgorithm::Sha256
        .digest(std::io::BufReader::new(file))
        .with_context(|| format!("Reading {}", path.display()))
}
