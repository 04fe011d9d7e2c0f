//! Planning a layering operation: which base, which repos, which packages (pipeline steps 1–4).
//!
//! Planning writes nothing but caches: repo metadata, the base rpmdb copy and `.solv` files under the
//! stateroot's `/var/cache/pkglayer`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use fn_error_context::context;
use ostree::glib;

use crate::compose::{META_BASE_COMMIT, META_PACKAGES};
use crate::error::UserError;
use crate::origin::Origin;
use crate::repo::{self, Fetcher, Freshness, RepoConfig, RepoMetadata, RepoVars};
use crate::rpm::Nevra;
use crate::rpm::import;
use crate::solver::{LOCAL_REPO, PlannedPackage, RepoSource, Resolver, SolveError};
use crate::sysroot::Sysroot;

/// Cache folder for base rpmdb copies and their `.solv`, keyed by base commit.
const BASE_CACHE_FOLDER: &str = "base-v1";
/// Cache folder for repo `.solv` files, keyed by repomd checksum.
const SOLV_CACHE_FOLDER: &str = "solv-v1";

/// Where repo configuration comes from and how fresh metadata must be.
#[derive(Debug, Clone)]
pub struct RepoOptions {
    /// A directory of `*.repo` files instead of the deployment's `/etc/yum.repos.d`.
    pub reposdir: Option<PathBuf>,
    pub freshness: Freshness,
    /// Accept requests the base already satisfies (they are recorded, and layer nothing).
    pub allow_inactive: bool,
}

/// The outcome of planning an install.
#[derive(Debug)]
pub struct InstallPlan {
    /// The vendor commit the layer goes on.
    pub base_commit: String,
    /// The whole request after this operation (what the origin will say).
    pub requested: BTreeSet<String>,
    /// Every package of the resulting layer, sorted.
    pub packages: Vec<PlannedPackage>,
    /// Packages of the layer that the current deployment does not have.
    pub added: Vec<PlannedPackage>,
    /// Layered packages of the current deployment that the new layer drops.
    pub removed: Vec<Nevra>,
    pub repos: Vec<RepoMetadata>,
    /// Repos skipped under `skip_if_unavailable=1`: id and reason.
    pub skipped_repos: Vec<(String, String)>,
}

/// The base commit and layered packages of a deployment, from its commit metadata.
pub struct DeploymentLayer {
    pub base_commit: String,
    pub packages: Vec<String>,
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
        }
    }
}

/// Reads what a deployment's commit says about its layer; a plain commit is its own base.
pub fn deployment_layer(repo: &ostree::Repo, commit: &str) -> Result<DeploymentLayer> {
    let (variant, _) = repo
        .load_commit(commit)
        .with_context(|| format!("Loading commit {commit}"))?;
    let metadata = glib::VariantDict::new(Some(&variant.child_value(0)));
    Ok(DeploymentLayer::from_metadata(commit, &metadata))
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

/// The request after installing `new`: the latest deployment's request plus `new`. A package that is
/// already requested is an error, or skipped with `idempotent`. An existing `*.rpm` path is a local
/// package: it is imported into the package cache now and requested as `SHA256:NEVRA`.
///
/// When a repo with `gpgcheck=1` has its keys at hand (cached with its metadata, or `file://`), a
/// local RPM must carry a valid signature by one of them.
pub fn request_with(
    sysroot: &Sysroot,
    new: &[String],
    idempotent: bool,
    repos: &RepoOptions,
) -> Result<Origin> {
    let mut origin = sysroot.origin(&sysroot.latest())?;
    for request in new {
        let path = Path::new(request);
        if request.ends_with(".rpm") && path.is_file() {
            check_local_signature(sysroot, repos, path)?;
            let package = import_local_rpm(sysroot, path)?;
            let nevra = package.nevra.to_string();
            if origin
                .requested_local
                .insert(nevra.clone(), package.sha256)
                .is_some()
                && !idempotent
            {
                return Err(UserError::new(format!("{nevra} is already requested"))
                    .hint("pass --idempotent to accept this")
                    .into());
            }
            continue;
        }
        if !origin.requested.insert(request.clone()) && !idempotent {
            return Err(UserError::new(format!("{request} is already requested"))
                .hint("`pkglayer status` lists what is layered; pass --idempotent to accept this")
                .into());
        }
    }
    Ok(origin)
}

/// Refuses a local RPM that the keys of the `gpgcheck=1` repos at hand do not vouch for.
fn check_local_signature(sysroot: &Sysroot, repos: &RepoOptions, path: &Path) -> Result<()> {
    let base = deployment_layer(&sysroot.repo(), &sysroot.latest().csum())?.base_commit;
    let mut keys = Vec::new();
    for config in load_repos(sysroot, repos, &base)?
        .iter()
        .filter(|r| r.enabled && r.gpgcheck)
    {
        let cached = repo::metadata::cached_keys(&sysroot.cache_dir(), config);
        if cached.is_empty() {
            keys.extend(
                config
                    .gpgkeys
                    .iter()
                    .filter_map(|url| url.strip_prefix("file://"))
                    .map(std::path::PathBuf::from),
            );
        } else {
            keys.extend(cached);
        }
    }
    if keys.is_empty() {
        return Ok(());
    }
    let keyring = crate::repo::signature::RpmKeyring::new(&keys)?;
    if let Err(why) = keyring.check(path)? {
        return Err(UserError::new(format!("local package {} {why}", path.display()))
            .hint("local packages are checked against the keys of the repos with gpgcheck=1; sign it with one of them")
            .into());
    }
    Ok(())
}

/// Imports a local RPM file into the package cache, owners mapped through the current base.
#[context("Importing local package {}", path.display())]
fn import_local_rpm(sysroot: &Sysroot, path: &Path) -> Result<import::CachedPackage> {
    let repo = sysroot.repo();
    let bytes = std::fs::read(path).with_context(|| format!("Reading {}", path.display()))?;
    let base = deployment_layer(&repo, &sysroot.latest().csum())?.base_commit;
    let owners = import::Owners::of_commit(&repo, &base)?;
    let origin = import::PackageOrigin {
        repo: LOCAL_REPO.to_string(),
        repo_checksum: String::new(),
    };
    import::import_rpm(&repo, &bytes, None, &owners, &origin)
}

/// The request after uninstalling `names` (or everything, with `all`). Only requested packages can go:
/// a base package or a package layered as a dependency is an error that says which it is.
pub fn request_without(sysroot: &Sysroot, names: &[String], all: bool) -> Result<Origin> {
    let latest = sysroot.latest();
    let mut origin = sysroot.origin(&latest)?;
    if all {
        origin.requested.clear();
        origin.requested_local.clear();
        return Ok(origin);
    }
    let repo = sysroot.repo();
    let layer = deployment_layer(&repo, &latest.csum())?;
    for name in names {
        if origin.requested.remove(name) {
            continue;
        }
        if let Some(nevra) = origin
            .requested_local
            .keys()
            .find(|n| Nevra::parse(n).is_some_and(|parsed| parsed.name == *name) || *n == name)
        {
            let nevra = nevra.clone();
            origin.requested_local.remove(&nevra);
            continue;
        }
        let layered_dependency = layer
            .packages
            .iter()
            .filter_map(|p| Nevra::parse(p))
            .find(|p| p.name == *name);
        if let Some(nevra) = layered_dependency {
            return Err(UserError::new(format!(
                "{name} was not requested: {nevra} is layered as a dependency of what was"
            ))
            .hint("uninstall the requested package that needs it; it then goes by itself")
            .into());
        }
        let in_base = crate::rpmdb::packages_in_commit(&repo, &layer.base_commit)?
            .into_iter()
            .find(|p| p.name == *name);
        return Err(match in_base {
            Some(nevra) => UserError::new(format!(
                "{name} is part of the base image ({nevra}), not layered"
            ))
            .hint("uninstall removes only layered packages; the base comes from the OS vendor"),
            None => UserError::new(format!("{name} is not layered")).hint(format!(
                "requested packages: {}",
                if origin.requested.is_empty() {
                    "none".to_string()
                } else {
                    origin
                        .requested
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )),
        }
        .into());
    }
    Ok(origin)
}

/// Plans the layer for `origin`'s request on `base_commit` (the latest deployment's base, or for an
/// upgrade the newest one).
#[context("Planning the transaction")]
pub fn plan(
    sysroot: &Sysroot,
    origin: &Origin,
    base_commit: &str,
    options: &RepoOptions,
) -> Result<InstallPlan> {
    let latest = sysroot.latest();
    let repo = sysroot.repo();
    let mut layer = deployment_layer(&repo, &latest.csum())?;
    // What is layered now is compared against; what the new layer goes on is `base_commit`.
    layer.base_commit = base_commit.to_string();
    let requested = origin.requested.clone();
    if requested.is_empty() && origin.requested_local.is_empty() {
        return Ok(InstallPlan {
            base_commit: layer.base_commit,
            requested,
            packages: Vec::new(),
            added: Vec::new(),
            removed: layer
                .packages
                .iter()
                .filter_map(|n| Nevra::parse(n))
                .collect(),
            repos: Vec::new(),
            skipped_repos: Vec::new(),
        });
    }

    // Local packages take part in resolution through their cached RPM heads.
    let scratch = crate::scratch::create(&repo, "plan")?;
    let mut local_heads = Vec::new();
    for (nevra, sha256) in &origin.requested_local {
        let cached = Nevra::parse(nevra)
            .map(|n| import::lookup(&repo, &n))
            .transpose()?
            .flatten()
            .filter(|cached| cached.sha256 == *sha256)
            .ok_or_else(|| {
                UserError::new(format!("local package {nevra} is not in the package cache"))
                    .hint("install it again from its .rpm file, or uninstall it")
            })?;
        let head = scratch.path().join(format!("{nevra}.rpm"));
        std::fs::write(&head, import::head(&repo, &cached.commit)?)?;
        local_heads.push(head);
    }

    let started = std::time::Instant::now();
    let fetcher = Fetcher::new();
    // Local packages alone need no repo (their dependencies may all be in the base).
    let sync = sync_metadata(
        sysroot,
        options,
        base_commit,
        &fetcher,
        !requested.is_empty(),
    )?;
    crate::log_phase("metadata", started);
    // resolve() checks each request on its own before solving, so an error names the one at fault.
    let all: Vec<String> = requested.iter().cloned().collect();
    let resolve = |with_filelists: bool| -> Result<Vec<PlannedPackage>> {
        let mut resolver = build_resolver(
            sysroot,
            &local_heads,
            &repo,
            &layer.base_commit,
            &sync.repos,
            with_filelists,
        )?;
        resolver.resolve(&all, false, options.allow_inactive)
    };
    // Like dnf5, start from primary metadata alone: it lists the files other packages usually depend
    // on (/usr/bin, /etc, ...), and filelists cost more to load than everything else together. Only a
    // path that primary does not know brings in the filelists.
    let started = std::time::Instant::now();
    let packages = match resolve(false) {
        Err(err) if needs_filelists(&err) => resolve(true)?,
        other => other?,
    };
    crate::log_phase("solve", started);
    let current_packages: BTreeSet<&str> = layer.packages.iter().map(String::as_str).collect();
    let added = packages
        .iter()
        .filter(|p| !current_packages.contains(p.nevra.to_string().as_str()))
        .cloned()
        .collect();
    let new_set: BTreeSet<String> = packages.iter().map(|p| p.nevra.to_string()).collect();
    let removed = layer
        .packages
        .iter()
        .filter(|nevra| !new_set.contains(*nevra))
        .filter_map(|nevra| Nevra::parse(nevra))
        .collect();

    Ok(InstallPlan {
        base_commit: layer.base_commit,
        requested,
        packages,
        added,
        removed,
        repos: sync.repos,
        skipped_repos: sync.skipped,
    })
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
        let partial = dir.with_extension("partial");
        let _ = std::fs::remove_dir_all(&partial);
        crate::rpmdb::checkout_rpmdb(repo, base_commit, &partial.join("root"))?;
        std::fs::rename(&partial, &dir).with_context(|| format!("Creating {}", dir.display()))?;
    }
    resolver.add_base_rpmdb(&root, Some(&solv))
}
