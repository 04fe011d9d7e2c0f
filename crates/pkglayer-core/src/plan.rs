//! Planning a layering operation: which base, which repos, which packages (pipeline steps 1–4).
//!
//! Planning writes nothing but caches: repo metadata, the base rpmdb copy and `.solv` files under the
//! stateroot's `/var/cache/pkglayer`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use fn_error_context::context;
use ostree::glib;

use sha2::Digest;

use crate::compose::{META_BASE_COMMIT, META_INACTIVE_REQUESTS, META_PACKAGES, META_STATE_DIGEST};
use crate::error::UserError;
use crate::origin::Origin;
use crate::repo::filelists::{self, FileKind};
use crate::repo::{self, Fetcher, Freshness, RepoConfig, RepoMetadata, RepoVars};
use crate::request::LocalFile;
use crate::rpm::Nevra;
use crate::rpm::import;
use crate::solver::{
    LOCAL_REPO, PlannedPackage, RepoSource, Request, Resolution, Resolver, SolveError,
};
use crate::sysroot::Sysroot;

/// Cache folder for base rpmdb copies and their `.solv`, keyed by base commit.
const BASE_CACHE_FOLDER: &str = "base-v1";
/// Cache folder for repo `.solv` files, keyed by repomd checksum.
const SOLV_CACHE_FOLDER: &str = "solv-v1";

/// Paths a refusal names per package (the rest are counted): enough to see what is wrong.
const SHOWN_PATHS: usize = 3;

/// Where repo configuration comes from and how fresh metadata must be.
#[derive(Debug, Clone)]
pub struct RepoOptions {
    /// A directory of `*.repo` files instead of the deployment's `/etc/yum.repos.d`.
    pub reposdir: Option<PathBuf>,
    pub freshness: Freshness,
}

/// The outcome of planning an install.
#[derive(Debug)]
pub struct InstallPlan {
    /// The vendor commit the layer goes on.
    pub base_commit: String,
    /// The whole request after this operation (what the origin will say).
    pub requested: BTreeSet<String>,
    /// Requests the base satisfies: kept, layering nothing.
    pub inactive_requests: Vec<String>,
    /// Requests whose package another one obsoletes, and what replaces them in the request.
    pub replaced_requests: Vec<(String, Nevra)>,
    /// Every package of the resulting layer, sorted.
    pub packages: Vec<PlannedPackage>,
    /// Packages of the layer that the current deployment does not have.
    pub added: Vec<PlannedPackage>,
    /// Layered packages of the current deployment that the new layer drops.
    pub removed: Vec<Nevra>,
    pub repos: Vec<RepoMetadata>,
    /// Repos skipped under `skip_if_unavailable=1`: id and reason.
    pub skipped_repos: Vec<(String, String)>,
    /// Local RPM files this operation names; the transaction imports them into the package cache.
    pub local_files: Vec<LocalFile>,
    /// What the layered tree is a function of ([`META_STATE_DIGEST`]).
    pub state_digest: String,
    /// The layer would equal the current one: dry and real runs alike then change nothing.
    pub unchanged: bool,
}

/// The base commit and layered packages of a deployment, from its commit metadata.
#[derive(Debug, Clone)]
pub struct DeploymentLayer {
    pub base_commit: String,
    pub packages: Vec<String>,
    /// Requests its base satisfies.
    pub inactive_requests: Vec<String>,
}

impl DeploymentLayer {
    /// From the metadata of `commit`; a plain commit is its own base and layers nothing.
    pub fn from_metadata(commit: &str, metadata: &glib::VariantDict) -> Self {
        DeploymentLayer {
            base_commit: metadata
                .lookup::<String>(META_BASE_COMMIT)
                .ok()
                .flatten()
                .unwrap_or_else(|| commit.to_string()),
            packages: metadata
                .lookup::<Vec<String>>(META_PACKAGES)
                .ok()
                .flatten()
                .unwrap_or_default(),
            inactive_requests: metadata
                .lookup::<Vec<String>>(META_INACTIVE_REQUESTS)
                .ok()
                .flatten()
                .unwrap_or_default(),
        }
    }
}

/// Reads what a deployment's commit says about its layer; a plain commit is its own base.
pub fn deployment_layer(repo: &ostree::Repo, commit: &str) -> Result<DeploymentLayer> {
    Ok(DeploymentLayer::from_metadata(
        commit,
        &commit_metadata(repo, commit)?,
    ))
}

/// The metadata dictionary of `commit`.
fn commit_metadata(repo: &ostree::Repo, commit: &str) -> Result<glib::VariantDict> {
    let (variant, _) = repo
        .load_commit(commit)
        .with_context(|| format!("Loading commit {commit}"))?;
    Ok(glib::VariantDict::new(Some(&variant.child_value(0))))
}

/// The repos configured for the current deployment, with `$releasever` from `base_commit`.
#[context("Loading repo configuration")]
pub fn load_repos(
    sysroot: &Sysroot,
    options: &RepoOptions,
    base_commit: &str,
) -> Result<Vec<RepoConfig>> {
    let current = sysroot.current();
    let repo = sysroot.repo();
    let releasever = crate::tree::os_release_version_id(&repo, base_commit)?.unwrap_or_default();
    let vars = RepoVars::new(&releasever, std::env::consts::ARCH);
    let dir = match &options.reposdir {
        Some(dir) => dir.clone(),
        None => {
            let dir = sysroot.deployment_path(&current).join("etc/yum.repos.d");
            if !dir.exists() {
                return Ok(Vec::new());
            }
            dir
        }
    };
    repo::load_repos_dir(&dir, &vars)
}

/// Fetches (or reuses) the metadata of every enabled repo, for a layer on `base_commit`. Having no
/// enabled repo is an error when `need_repos`.
pub fn sync_metadata(
    sysroot: &Sysroot,
    options: &RepoOptions,
    base_commit: &str,
    fetcher: &Fetcher,
    need_repos: bool,
) -> Result<repo::SyncReport> {
    let repos = load_repos(sysroot, options, base_commit)?;
    if need_repos && !repos.iter().any(|r| r.enabled) {
        return Err(UserError::new("no enabled repos")
            .hint(match &options.reposdir {
                Some(dir) => format!("add a *.repo file with enabled=1 to {}", dir.display()),
                None => "add a *.repo file to /etc/yum.repos.d, or pass --reposdir DIR".to_string(),
            })
            .into());
    }
    let report = repo::sync_repos(&sysroot.cache_dir(), &repos, options.freshness, fetcher)?;
    crate::failpoint::hit("after-metadata");
    Ok(report)
}

/// Plans the layer for `origin`'s request on `base_commit` (the current base, or for an upgrade the
/// newest one), compared with `current` (the layer of the deployment the operation builds on).
/// `local_files` are local RPMs named by this operation, not yet in the package cache; requests in
/// `may_be_inactive` may be satisfied by the base (they are kept and layer nothing), others may not.
/// A package to download whose file list has a path no OSTree tree can hold is refused here,
/// before any download (`refuse_unplaceable_files`).
#[context("Planning the transaction")]
pub fn plan(
    sysroot: &Sysroot,
    origin: &Origin,
    current: &Current,
    base_commit: &str,
    options: &RepoOptions,
    local_files: &[LocalFile],
    may_be_inactive: &BTreeSet<String>,
) -> Result<InstallPlan> {
    let repo = sysroot.repo();
    let requested = origin.requested.clone();
    let mut plan = InstallPlan {
        base_commit: base_commit.to_string(),
        requested,
        inactive_requests: Vec::new(),
        replaced_requests: Vec::new(),
        packages: Vec::new(),
        added: Vec::new(),
        removed: Vec::new(),
        repos: Vec::new(),
        skipped_repos: Vec::new(),
        local_files: local_files.to_vec(),
        state_digest: String::new(),
        unchanged: false,
    };
    if !plan.requested.is_empty() || !origin.requested_local.is_empty() {
        resolve(sysroot, &repo, origin, options, may_be_inactive, &mut plan)?;
        let mut to_download = Vec::new();
        for package in &plan.packages {
            if needs_download(&repo, package)? {
                to_download.push(package);
            }
        }
        if options.freshness == Freshness::CacheOnly {
            refuse_uncached(&to_download)?;
        }
        refuse_unplaceable_files(&plan, &to_download)?;
    }
    let current_packages: BTreeSet<&str> =
        current.layer.packages.iter().map(String::as_str).collect();
    plan.added = plan
        .packages
        .iter()
        .filter(|p| !current_packages.contains(p.nevra.to_string().as_str()))
        .cloned()
        .collect();
    let new_set: BTreeSet<String> = plan.packages.iter().map(|p| p.nevra.to_string()).collect();
    plan.removed = current
        .layer
        .packages
        .iter()
        .filter(|nevra| !new_set.contains(*nevra))
        .filter_map(|nevra| Nevra::parse(nevra))
        .collect();
    plan.state_digest = state_digest(base_commit, &plan.requested, origin, &plan.packages);
    plan.unchanged = plan.state_digest == current.state_digest;
    Ok(plan)
}

/// The deployment an operation builds on, as planning compares with it.
#[derive(Debug)]
pub struct Current {
    pub layer: DeploymentLayer,
    /// The state digest of its layer (for a plain deployment: of nothing layered on itself).
    pub state_digest: String,
}

impl Current {
    /// Reads the layer and state digest of `commit`.
    pub fn of_commit(repo: &ostree::Repo, commit: &str) -> Result<Self> {
        let metadata = commit_metadata(repo, commit)?;
        let layer = DeploymentLayer::from_metadata(commit, &metadata);
        let state_digest = metadata
            .lookup::<String>(META_STATE_DIGEST)
            .ok()
            .flatten()
            .unwrap_or_else(|| {
                state_digest(&layer.base_commit, &BTreeSet::new(), &Origin::new(""), &[])
            });
        Ok(Current {
            layer,
            state_digest,
        })
    }
}

/// sha512 over what the layered tree is a function of: the base, the request (local packages by
/// digest), the packages whose scripts are skipped, the resolved packages.
fn state_digest(
    base_commit: &str,
    requested: &BTreeSet<String>,
    origin: &Origin,
    packages: &[PlannedPackage],
) -> String {
    let mut hasher = sha2::Sha512::new();
    hasher.update(base_commit.as_bytes());
    for request in requested {
        hasher.update(b"\nrequest ");
        hasher.update(request.as_bytes());
    }
    for sha256 in origin.requested_local.values() {
        hasher.update(b"\nlocal ");
        hasher.update(sha256.as_bytes());
    }
    // Only names of packages in the layer change the tree: a name left over from a package since
    // uninstalled must not make every later plan look like a change.
    for name in origin
        .skip_scripts
        .iter()
        .filter(|name| packages.iter().any(|p| p.nevra.name == **name))
    {
        hasher.update(b"\nskip-scripts ");
        hasher.update(name.as_bytes());
    }
    let mut nevras: Vec<String> = packages.iter().map(|p| p.nevra.to_string()).collect();
    nevras.sort();
    for nevra in nevras {
        hasher.update(b"\npackage ");
        hasher.update(nevra.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Resolves the request of `origin` into `plan.packages`, with the repos it used.
fn resolve(
    sysroot: &Sysroot,
    repo: &ostree::Repo,
    origin: &Origin,
    options: &RepoOptions,
    may_be_inactive: &BTreeSet<String>,
    plan: &mut InstallPlan,
) -> Result<()> {
    // Local packages take part in resolution through their RPM heads: the file named now, or the
    // head kept in the package cache.
    let scratch = crate::scratch::create(repo, "plan")?;
    let mut local_heads = Vec::new();
    for (nevra, sha256) in &origin.requested_local {
        if let Some(file) = plan.local_files.iter().find(|f| f.sha256 == *sha256) {
            local_heads.push(file.path.clone());
            continue;
        }
        let cached = Nevra::parse(nevra)
            .map(|n| import::lookup_local(repo, &n, sha256))
            .transpose()?
            .flatten()
            .ok_or_else(|| {
                UserError::new(format!("local package {nevra} is not in the package cache"))
                    .hint("install it again from its .rpm file, or uninstall it")
            })?;
        let head = scratch.path().join(format!("{nevra}.rpm"));
        std::fs::write(&head, import::head(repo, &cached.commit)?)?;
        local_heads.push(head);
    }

    let started = std::time::Instant::now();
    let fetcher = Fetcher::new();
    // Local packages alone need no repo (their dependencies may all be in the base).
    let sync = sync_metadata(
        sysroot,
        options,
        &plan.base_commit,
        &fetcher,
        !plan.requested.is_empty(),
    )?;
    crate::log_phase("metadata", started);
    // resolve() checks each request on its own before solving, so an error names the one at fault.
    let requests: Vec<Request> = plan
        .requested
        .iter()
        .map(|spec| Request::new(spec.clone(), may_be_inactive.contains(spec)))
        .collect();
    let resolve = |with_filelists: bool| -> Result<Resolution> {
        let mut resolver = build_resolver(
            sysroot,
            &local_heads,
            repo,
            &plan.base_commit,
            &sync.repos,
            with_filelists,
        )?;
        resolver.resolve_requests(&requests, false)
    };
    // Like dnf5, start from primary metadata alone: it lists the files other packages usually depend
    // on (/usr/bin, /etc, ...), and filelists cost more to load than everything else together. Only a
    // path that primary does not know brings in the filelists.
    let started = std::time::Instant::now();
    let resolution = match resolve(false) {
        Err(err) if needs_filelists(&err) => resolve(true)?,
        other => other?,
    };
    plan.packages = resolution.packages;
    plan.inactive_requests = resolution
        .inactive
        .into_iter()
        .map(|inactive| inactive.request)
        .collect();
    // As dnf does, a package another one obsoletes is replaced by it, and so is the request (a
    // local package that obsoletes it is requested already, as a local one).
    for obsoleted in resolution.obsoleted {
        plan.requested.remove(&obsoleted.request);
        if !origin
            .requested_local
            .contains_key(&obsoleted.obsoleted_by.to_string())
        {
            plan.requested.insert(obsoleted.obsoleted_by.name.clone());
        }
        plan.replaced_requests
            .push((obsoleted.request, obsoleted.obsoleted_by));
    }
    crate::log_phase("solve", started);
    plan.repos = sync.repos;
    plan.skipped_repos = sync.skipped;
    Ok(())
}

/// With `-C/--cache-only`, refuses the plan when a package is not in the package cache: no
/// connection is ever opened, and the dry run says so too.
fn refuse_uncached(to_download: &[&PlannedPackage]) -> Result<()> {
    if to_download.is_empty() {
        return Ok(());
    }
    let missing: Vec<String> = to_download.iter().map(|p| p.nevra.to_string()).collect();
    Err(UserError::new(format!(
        "--cache-only: not in the package cache: {}",
        missing.join(", ")
    ))
    .hint("fetch them first with --download-only, or leave out -C/--cache-only")
    .into())
}

/// Refuses the plan when a package it would download ships, by its repo's filelists, a path that
/// has no place in an OSTree tree (`/tmp`, `/home`, `/srv`…: [`import::place`] gives it none). The
/// import refuses such a package too, but only once it is downloaded; the metadata tells now, and
/// dry runs see the same refusal as real runs.
///
/// Like the import, ghost files are left out (they are not in the payload), and directories count.
/// Files under `/var` and `/run` are left to the import: filelists do not tell a file (refused
/// there) from a symlink (allowed, as a tmpfiles.d line). Paths two new packages share are not
/// judged either: filelists carry no digests and identical files are legal, so compose decides.
///
/// Only packages the package cache lacks are looked at (those in it passed the import), so when
/// nothing is to be downloaded no filelists are read. A repo without filelists is not checked.
fn refuse_unplaceable_files(plan: &InstallPlan, to_download: &[&PlannedPackage]) -> Result<()> {
    let mut by_repo: BTreeMap<&str, HashSet<Nevra>> = BTreeMap::new();
    for package in to_download {
        by_repo
            .entry(&package.repo)
            .or_default()
            .insert(package.nevra.clone());
    }
    let mut refusals = Vec::new();
    for (id, wanted) in by_repo {
        let Some(path) = plan
            .repos
            .iter()
            .find(|r| r.id == id)
            .and_then(|r| r.filelists.as_deref())
        else {
            continue;
        };
        let started = std::time::Instant::now();
        let lists = filelists::open(path)
            .and_then(|xml| filelists::read(xml, &wanted))
            .map_err(|err| {
                UserError::new(format!(
                    "the metadata of repo {id} is malformed: {}: {err:#}",
                    path.display()
                ))
                .hint("`pkglayer refresh-md --force` fetches it again; if that does not help, the repo itself is broken")
            })?;
        crate::log_phase("filelists", started);
        let mut lists: Vec<_> = lists.into_iter().collect();
        lists.sort_by(|a, b| a.0.cmp(&b.0));
        for (nevra, files) in lists {
            let outside: Vec<&str> = files
                .iter()
                .filter(|f| f.kind != FileKind::Ghost && import::place(&f.path).is_none())
                .map(|f| f.path.as_str())
                .collect();
            if outside.is_empty() {
                continue;
            }
            refusals.push(format!(
                "package {nevra} from repo {id} ships {}, outside the directories an OSTree image may hold",
                list_paths(&outside)
            ));
        }
    }
    if refusals.is_empty() {
        return Ok(());
    }
    Err(UserError::new(refusals.join("\n"))
        .hint("nothing was downloaded; layered packages may only ship files under /usr, /etc, /opt, /boot (and directories or symlinks under /var and /run)")
        .into())
}

/// `/a`, `/a and /b`, `/a, /b, /c and 4 more paths`: the first [`SHOWN_PATHS`], and how many more.
fn list_paths(paths: &[&str]) -> String {
    match paths {
        [] => String::new(),
        [only] => only.to_string(),
        _ if paths.len() <= SHOWN_PATHS => {
            let (last, first) = paths.split_last().expect("two or more");
            format!("{} and {last}", first.join(", "))
        }
        _ => {
            let more = paths.len() - SHOWN_PATHS;
            let noun = if more == 1 { "path" } else { "paths" };
            format!("{} and {more} more {noun}", paths[..SHOWN_PATHS].join(", "))
        }
    }
}

/// Whether applying the plan downloads `package`: a repo package the package cache lacks, or holds
/// in another build than the repo's.
fn needs_download(repo: &ostree::Repo, package: &PlannedPackage) -> Result<bool> {
    Ok(package.repo != LOCAL_REPO && crate::layer::cached_copy(repo, package)?.is_none())
}

/// A resolver over the base rpmdb and the repos' metadata, with or without filelists.
fn build_resolver(
    sysroot: &Sysroot,
    local_heads: &[PathBuf],
    repo: &ostree::Repo,
    base_commit: &str,
    repos: &[RepoMetadata],
    with_filelists: bool,
) -> Result<Resolver> {
    let mut resolver = Resolver::new(std::env::consts::ARCH);
    add_base(&mut resolver, sysroot, repo, base_commit)?;
    if !local_heads.is_empty() {
        let paths: Vec<&Path> = local_heads.iter().map(PathBuf::as_path).collect();
        resolver.add_local_rpms(&paths)?;
    }
    let solv_dir = sysroot.cache_dir().join(SOLV_CACHE_FOLDER);
    std::fs::create_dir_all(&solv_dir)
        .with_context(|| format!("Creating {}", solv_dir.display()))?;
    for metadata in repos {
        let filelists = metadata.filelists.clone().filter(|_| with_filelists);
        let suffix = if filelists.is_some() {
            "-filelists"
        } else {
            ""
        };
        resolver.add_repo(&RepoSource {
            id: metadata.id.clone(),
            primary: metadata.primary.clone(),
            solv_cache: Some(solv_dir.join(format!(
                "{}-{}{suffix}.solv",
                metadata.id, metadata.checksum
            ))),
            filelists,
            priority: metadata.priority,
            cost: metadata.cost,
            exclude: metadata.exclude.clone(),
            includepkgs: metadata.includepkgs.clone(),
        })?;
    }
    Ok(resolver)
}

/// Whether a failed resolution could succeed with filelists: a path request or a path dependency
/// that nothing in primary provides.
fn needs_filelists(err: &anyhow::Error) -> bool {
    match err.downcast_ref::<SolveError>() {
        Some(SolveError::NotFound { request }) => request.starts_with('/'),
        Some(SolveError::Unsatisfiable { problems }) => {
            problems.iter().any(|p| p.contains("nothing provides /"))
        }
        _ => false,
    }
}

/// Adds the base commit's rpmdb to the resolver, through a per-commit cache of its copy and `.solv`.
fn add_base(
    resolver: &mut Resolver,
    sysroot: &Sysroot,
    repo: &ostree::Repo,
    base_commit: &str,
) -> Result<()> {
    let dir = sysroot
        .cache_dir()
        .join(BASE_CACHE_FOLDER)
        .join(base_commit);
    let root = dir.join("root");
    let solv = dir.join("rpmdb.solv");
    if !solv.exists() && !root.exists() {
        // Dry runs take no lock: another process may be making the same copy. Each works in a
        // folder of its own; the first rename wins and the others' copies go.
        let folder = sysroot.cache_dir().join(BASE_CACHE_FOLDER);
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("Creating {}", folder.display()))?;
        let partial = tempfile::Builder::new()
            .prefix(".partial-")
            .tempdir_in(&folder)
            .with_context(|| format!("Creating a folder in {}", folder.display()))?;
        crate::rpmdb::checkout_rpmdb(repo, base_commit, &partial.path().join("root"))?;
        if let Err(err) = std::fs::rename(partial.path(), &dir)
            && !root.exists()
        {
            return Err(err).with_context(|| format!("Creating {}", dir.display()));
        }
    }
    resolver.add_base_rpmdb(&root, Some(&solv))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_first_paths_and_count_the_rest() {
        let cases: [(&[&str], &str); 5] = [
            (&["/tmp/a"], "/tmp/a"),
            (&["/tmp/a", "/srv/b"], "/tmp/a and /srv/b"),
            (&["/a", "/b", "/c"], "/a, /b and /c"),
            (&["/a", "/b", "/c", "/d"], "/a, /b, /c and 1 more path"),
            (
                &["/a", "/b", "/c", "/d", "/e"],
                "/a, /b, /c and 2 more paths",
            ),
        ];
        for (paths, expected) in cases {
            assert_eq!(list_paths(paths), expected);
        }
    }
}
