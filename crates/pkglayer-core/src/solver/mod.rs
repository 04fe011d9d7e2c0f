//! Dependency resolution with libsolv, against the base tree's rpm database.
//!
//! The installed set is the *base* commit's rpmdb, every base package locked: layering adds packages,
//! it never changes or removes what the vendor shipped. Requests are matched the way dnf matches them
//! (name, provide, file path, `name.arch`, `name-version`, NEVRA).

#[allow(unsafe_code)]
mod libsolv;

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::rpm::Nevra;
use libsolv::{Pool, SolvableInfo, SolveResult};

/// A package the transaction installs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedPackage {
    pub nevra: Nevra,
    /// The id of the repo it comes from.
    pub repo: String,
    pub download_size: u64,
    pub install_size: u64,
    /// Path of the RPM relative to the repo's base URL.
    pub location: Option<String>,
}

/// A repo's metadata as the resolver reads it.
#[derive(Debug, Clone)]
pub struct RepoSource {
    pub id: String,
    /// `primary.xml[.gz|.xz|.zst|.bz2]`
    pub primary: PathBuf,
    /// `filelists.xml…`, for file dependencies.
    pub filelists: Option<PathBuf>,
    /// dnf's `priority` and `cost`: lower wins.
    pub priority: i32,
    pub cost: i32,
    /// A `.solv` file to read instead of the XML (written when missing); key it by the repomd checksum.
    pub solv_cache: Option<PathBuf>,
}

/// Why a request cannot be resolved; each says which request and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SolveError {
    #[error("no package in the enabled repos provides {request:?}")]
    NotFound { request: String },
    #[error("{request:?} is already provided by the base package {package}")]
    AlreadyInBase { request: String, package: String },
    #[error("the request cannot be satisfied:\n  {}", problems.join("\n  "))]
    Unsatisfiable { problems: Vec<String> },
}

impl SolveError {
    /// What the user can do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            SolveError::NotFound { .. } => {
                "check the spelling, or whether the repo that has it is enabled (`pkglayer refresh-md` lists them)"
            }
            SolveError::AlreadyInBase { .. } => {
                "it is part of the base image already; pass --allow-inactive to request it anyway"
            }
            SolveError::Unsatisfiable { .. } => {
                "base packages cannot be changed or removed by layering; pick versions that fit the base"
            }
        }
    }
}

/// A resolver: one pool with the base rpmdb and the repos' metadata.
pub struct Resolver {
    pool: Pool,
    prepared: bool,
}

impl Resolver {
    pub fn new(arch: &str) -> Self {
        Resolver {
            pool: Pool::new(arch),
            prepared: false,
        }
    }

    /// The base tree's packages, from the rpm database under `root` (a tree, or a copy of its rpmdb
    /// at the tree's dbpath); `solv_cache` (keyed by the base commit) skips reading it next time.
    pub fn add_base_rpmdb(&mut self, root: &Path, solv_cache: Option<&Path>) -> Result<()> {
        self.prepared = false;
        self.pool.add_installed_rpmdb(root, solv_cache)
    }

    /// A repo's metadata.
    pub fn add_repo(&mut self, repo: &RepoSource) -> Result<()> {
        self.prepared = false;
        // dnf: the lower priority (then cost) number wins; libsolv: the higher number wins.
        let priorities = (-repo.priority, -repo.cost);
        self.pool.add_rpmmd(
            &repo.id,
            &repo.primary,
            repo.filelists.as_deref(),
            priorities,
            repo.solv_cache.as_deref(),
        )
    }

    /// The packages to install so that every request is satisfied, base packages untouched.
    /// Weak dependencies (Recommends) are followed unless `ignore_weak`, as dnf does by default.
    pub fn resolve(
        &mut self,
        requests: &[String],
        ignore_weak: bool,
    ) -> Result<Vec<PlannedPackage>> {
        if !self.prepared {
            self.pool.prepare();
            self.prepared = true;
        }
        let mut selections = Vec::new();
        for request in requests {
            let (matches, selection) = self.pool.select(request)?;
            if let Some(base) = matches.iter().find(|s| s.installed) {
                return Err(SolveError::AlreadyInBase {
                    request: request.clone(),
                    package: to_nevra(base).to_string(),
                }
                .into());
            }
            if matches.is_empty() {
                return Err(SolveError::NotFound {
                    request: request.clone(),
                }
                .into());
            }
            selections.push(selection);
        }
        match self.pool.solve_install(&selections, ignore_weak) {
            SolveResult::Problems(problems) => Err(SolveError::Unsatisfiable { problems }.into()),
            SolveResult::Install(packages) => {
                let mut planned: Vec<PlannedPackage> = packages
                    .iter()
                    .map(|s| PlannedPackage {
                        nevra: to_nevra(s),
                        repo: s.repo.clone(),
                        download_size: s.download_size,
                        install_size: s.install_size,
                        location: s.location.clone(),
                    })
                    .collect();
                planned.sort_by(|a, b| a.nevra.cmp(&b.nevra));
                Ok(planned)
            }
        }
    }
}

fn to_nevra(s: &SolvableInfo) -> Nevra {
    Nevra::from_parts(&s.name, &s.evr, &s.arch)
}
