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

/// The repo name local RPM files get, as in dnf.
pub const LOCAL_REPO: &str = "@commandline";

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
    /// The RPM's checksum in the repo metadata: algorithm (`sha256`, …) and hex.
    pub checksum: Option<(String, String)>,
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
    /// Package specs (globs on name, name.arch, name-version[-release], NEVRA) the repo must not offer.
    pub exclude: Vec<String>,
    /// When not empty, the only package specs the repo may offer.
    pub includepkgs: Vec<String>,
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
    /// Local RPMs to install, by solvable id.
    local: Vec<libsolv_sys::Id>,
}

impl Resolver {
    pub fn new(arch: &str) -> Self {
        Resolver {
            pool: Pool::new(arch),
            prepared: false,
            local: Vec::new(),
        }
    }

    /// The base tree's packages, from the rpm database under `root` (a tree, or a copy of its rpmdb
    /// at the tree's dbpath); `solv_cache` (keyed by the base commit) skips reading it next time.
    pub fn add_base_rpmdb(&mut self, root: &Path, solv_cache: Option<&Path>) -> Result<()> {
        self.prepared = false;
        self.pool.add_installed_rpmdb(root, solv_cache)
    }

    /// Local RPM files (their heads are enough) to install; they form the repo `@commandline`.
    pub fn add_local_rpms(&mut self, paths: &[&Path]) -> Result<()> {
        self.prepared = false;
        let ids = self.pool.add_rpm_files(LOCAL_REPO, paths)?;
        self.local.extend(ids);
        Ok(())
    }

    /// A repo's metadata.
    pub fn add_repo(&mut self, repo: &RepoSource) -> Result<()> {
        self.prepared = false;
        // dnf: the lower priority (then cost) number wins; libsolv: the higher number wins.
        let priorities = (-repo.priority, -repo.cost);
        self.pool
            .add_rpmmd(
                &repo.id,
                &repo.primary,
                repo.filelists.as_deref(),
                priorities,
                repo.solv_cache.as_deref(),
            )
            .map_err(|err| {
                crate::UserError::new(format!(
                    "the metadata of repo {} is malformed: {err:#}",
                    repo.id
                ))
                .hint("`pkglayer refresh-md --force` fetches it again; if that does not help, the repo itself is broken")
            })?;
        if !repo.exclude.is_empty() || !repo.includepkgs.is_empty() {
            let hidden: Vec<_> = self
                .pool
                .repo_solvables(&repo.id)
                .into_iter()
                .filter(|(_, s)| {
                    let nevra = to_nevra(s);
                    let excluded = repo.exclude.iter().any(|spec| matches_spec(spec, &nevra));
                    let included = repo.includepkgs.is_empty()
                        || repo
                            .includepkgs
                            .iter()
                            .any(|spec| matches_spec(spec, &nevra));
                    excluded || !included
                })
                .map(|(id, _)| id)
                .collect();
            self.pool.hide(&hidden);
        }
        Ok(())
    }

    /// The packages to install so that every request is satisfied, base packages untouched.
    /// Weak dependencies (Recommends) are followed unless `ignore_weak`, as dnf does by default. A
    /// request the base already satisfies is an error, or with `allow_inactive` simply satisfied.
    pub fn resolve(
        &mut self,
        requests: &[String],
        ignore_weak: bool,
        allow_inactive: bool,
    ) -> Result<Vec<PlannedPackage>> {
        if !self.prepared {
            self.pool.prepare();
            self.prepared = true;
        }
        let mut selections = Vec::new();
        for request in requests {
            let (matches, selection) = self.pool.select(request)?;
            if let Some(base) = matches.iter().find(|s| s.installed) {
                if allow_inactive {
                    continue;
                }
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
        match self
            .pool
            .solve_install(&selections, &self.local, ignore_weak)
        {
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
                        checksum: s.checksum.clone(),
                    })
                    .collect();
                planned.sort_by(|a, b| a.nevra.cmp(&b.nevra));
                Ok(planned)
            }
        }
    }
}

/// Whether a dnf package spec (a glob) names this package, in any of the forms dnf accepts.
pub fn matches_spec(spec: &str, nevra: &Nevra) -> bool {
    let forms = [
        nevra.name.clone(),
        format!("{}.{}", nevra.name, nevra.arch),
        format!("{}-{}", nevra.name, nevra.version),
        format!("{}-{}-{}", nevra.name, nevra.version, nevra.release),
        format!("{}-{}", nevra.name, nevra.evr()),
        nevra.to_string(),
    ];
    forms
        .iter()
        .any(|form| glob_match(spec.as_bytes(), form.as_bytes()))
}

/// Shell-style glob: `*`, `?` and `[...]` (with `!` or `^` to negate).
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob_match(&pattern[1..], text) || (!text.is_empty() && glob_match(pattern, &text[1..]))
        }
        (Some(b'?'), Some(_)) => glob_match(&pattern[1..], &text[1..]),
        (Some(b'['), Some(&c)) => match pattern.iter().position(|&b| b == b']') {
            Some(close) if close > 1 => {
                let set = &pattern[1..close];
                let (negate, set) = match set.first() {
                    Some(b'!' | b'^') => (true, &set[1..]),
                    _ => (false, set),
                };
                let mut found = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == b'-' {
                        found |= set[i] <= c && c <= set[i + 2];
                        i += 3;
                    } else {
                        found |= set[i] == c;
                        i += 1;
                    }
                }
                found != negate && glob_match(&pattern[close + 1..], &text[1..])
            }
            _ => c == b'[' && glob_match(&pattern[1..], &text[1..]),
        },
        (Some(&p), Some(&c)) => p == c && glob_match(&pattern[1..], &text[1..]),
        _ => false,
    }
}

fn to_nevra(s: &SolvableInfo) -> Nevra {
    Nevra::from_parts(&s.name, &s.evr, &s.arch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_match_like_dnf() {
        let nevra = Nevra::parse("kernel-core-6.8.1-300.fc40.x86_64").unwrap();
        let yes = [
            "kernel-core",
            "kernel*",
            "kernel-core.x86_64",
            "kernel-core-6.8.1",
            "kernel-core-6.8.1-300.fc40",
            "kernel-core-6.8.1-300.fc40.x86_64",
            "kernel-?ore",
            "kernel-[a-d]ore",
            "*.x86_64",
        ];
        let no = [
            "kernel",
            "kernel-core.noarch",
            "kernel-[!c]ore",
            "*-7*",
            "glibc*",
        ];
        for spec in yes {
            assert!(matches_spec(spec, &nevra), "{spec} should match");
        }
        for spec in no {
            assert!(!matches_spec(spec, &nevra), "{spec} should not match");
        }
    }
}
