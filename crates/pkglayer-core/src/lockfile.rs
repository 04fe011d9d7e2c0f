//! Lockfiles: a deployment's layer written down exactly (base commit, every layered package by
//! NEVRA, sha256 and repo, the request and module streams behind it), and read back to layer
//! exactly that on another host, or fail naming what cannot be had.
//!
//! The format is JSON, versioned by `lockfile-version` (docs/design.md, "Fleet: lockfiles and
//! compose"). Readers refuse a version they do not know.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::commit_metadata::{CachedPackageInfo, CommitInfo, DeploymentLayer};
use crate::error::UserError;
use crate::origin::Origin;
use crate::request::LocalFile;
use crate::rpm::Nevra;
use crate::solver::{LOCAL_REPO, PlannedPackage};
use crate::sysroot::Sysroot;

/// The format version this pkglayer writes and reads.
pub const LOCKFILE_VERSION: u32 = 1;

/// A layer written down exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Lockfile {
    /// [`LOCKFILE_VERSION`].
    pub lockfile_version: u32,
    /// The base the layer goes on.
    pub base: LockedBase,
    /// The requests (origin `[packages] requested=`), for the hosts' origins.
    pub requested: BTreeSet<String>,
    /// Module streams enabled (`name:stream`) and profiles installed (`name:stream/profile`).
    #[serde(default)]
    pub modules: LockedModules,
    /// Packages whose scripts do not run.
    #[serde(default)]
    pub skip_scripts: BTreeSet<String>,
    /// Base packages removed or replaced (absent when there are none, so a lockfile without
    /// overrides reads as before).
    #[serde(default, skip_serializing_if = "LockedOverrides::is_empty")]
    pub overrides: LockedOverrides,
    /// Every layered package, NEVRA sorted: those requested, their dependencies, and the
    /// replacements of base packages (with `replaces`).
    pub packages: Vec<LockedPackage>,
}

/// The overrides of a locked layer, as the origin's `[overrides]` keeps them. The replacement
/// packages themselves are in [`Lockfile::packages`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LockedOverrides {
    /// Base packages the layer goes without, by name (`remove=`).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub remove: BTreeSet<String>,
    /// Base packages following a repo's builds (`replace=repo=ID,pkg;`), in the origin's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace_from: Vec<LockedRemoteReplacement>,
}

/// Base packages that follow one repo's builds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LockedRemoteReplacement {
    /// The repo id.
    pub repo: String,
    /// The package names.
    pub packages: Vec<String>,
}

impl LockedOverrides {
    fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.replace_from.is_empty()
    }
}

/// The base of a locked layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LockedBase {
    /// The base commit's checksum.
    pub commit: String,
    /// What the locked host's origin followed (informative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refspec: Option<String>,
    /// The base commit's `version` (informative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Module requests of a locked layer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LockedModules {
    /// `name:stream`.
    #[serde(default)]
    pub enable: BTreeSet<String>,
    /// `name:stream/profile`.
    #[serde(default)]
    pub install: BTreeSet<String>,
}

/// One package of a locked layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LockedPackage {
    /// `name-[epoch:]version-release.arch`.
    pub nevra: String,
    /// sha256 of the RPM file.
    pub sha256: String,
    /// The repo id it came from; `@commandline` for a local RPM.
    pub repo: String,
    /// The base package this one replaces (`name-[epoch:]version-release.arch`), for an
    /// override's replacement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

impl Lockfile {
    /// The layer of the current deployment (the booted one, offline the default).
    pub fn of_current(sysroot: &Sysroot) -> Result<Self> {
        let repo = sysroot.repo();
        let deployment = sysroot.current();
        let origin = sysroot.origin(&deployment)?;
        let layer = DeploymentLayer::of_deployment(&repo, &deployment.csum(), &origin)?;
        let base = CommitInfo::load(&repo, &layer.base_commit)?;
        let mut packages = Vec::new();
        for nevra in &layer.packages {
            let replaces = layer
                .base_replacements
                .iter()
                .find(|(_, new)| new == nevra)
                .map(|(old, _)| old.to_string());
            let local = origin
                .requested_local
                .get(nevra)
                .or_else(|| origin.override_replace_local.get(nevra));
            if let Some(sha256) = local {
                packages.push(LockedPackage {
                    nevra: nevra.to_string(),
                    sha256: sha256.clone(),
                    repo: LOCAL_REPO.into(),
                    replaces,
                });
                continue;
            }
            let cached = crate::package_cache::lookup(&repo, nevra)?.ok_or_else(|| {
                UserError::new(format!(
                    "layered package {nevra} is not in the package cache, so its sha256 and repo are unknown"
                ))
                .hint("`pkglayer upgrade` (or install again) brings it back into the cache")
            })?;
            let info = CachedPackageInfo::load(&repo, &cached.commit)?;
            packages.push(LockedPackage {
                nevra: nevra.to_string(),
                sha256: cached.sha256,
                repo: info.repo().unwrap_or_default(),
                replaces,
            });
        }
        packages.sort_by(|a, b| a.nevra.cmp(&b.nevra));
        Ok(Lockfile {
            lockfile_version: LOCKFILE_VERSION,
            base: LockedBase {
                commit: layer.base_commit.clone(),
                refspec: Some(origin.refspec.clone()),
                version: base.version(),
            },
            requested: origin.requested.clone(),
            modules: LockedModules {
                enable: origin.modules.enable.clone(),
                install: origin.modules.install.clone(),
            },
            skip_scripts: origin.skip_scripts.clone(),
            overrides: LockedOverrides {
                remove: origin.override_remove.clone(),
                replace_from: origin
                    .override_replace_remote
                    .iter()
                    .map(|(repo, packages)| LockedRemoteReplacement {
                        repo: repo.clone(),
                        packages: packages.clone(),
                    })
                    .collect(),
            },
            packages,
        })
    }

    /// The lockfile as written: pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a lockfile serializes");
        text.push('\n');
        text
    }

    /// Reads and checks the lockfile at `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|err| {
            UserError::new(format!("cannot read lockfile {}: {err}", path.display()))
                .hint("give the path of a file `pkglayer lock --output FILE` wrote")
        })?;
        Self::parse(&text).map_err(|err| {
            UserError::new(format!("lockfile {}: {err:#}", path.display()))
                .hint("write it again with `pkglayer lock --output FILE` on a host with that layer")
                .into()
        })
    }

    /// Parses and checks a lockfile's text.
    pub fn parse(text: &str) -> Result<Self> {
        let value: serde_json::Value = serde_json::from_str(text).context("not JSON")?;
        match value.get("lockfile-version").and_then(|v| v.as_u64()) {
            Some(version) if version == u64::from(LOCKFILE_VERSION) => {}
            Some(version) => anyhow::bail!(
                "format version {version}; this pkglayer reads version {LOCKFILE_VERSION}"
            ),
            None => anyhow::bail!("no \"lockfile-version\": not a pkglayer lockfile"),
        }
        let lock: Lockfile = serde_json::from_value(value).context("malformed")?;
        if !is_checksum(&lock.base.commit) {
            anyhow::bail!(
                "base commit {:?} is not a sha256 checksum",
                lock.base.commit
            );
        }
        for package in &lock.packages {
            if Nevra::parse(&package.nevra).is_none() {
                anyhow::bail!("{:?} is not a NEVRA", package.nevra);
            }
            if !is_checksum(&package.sha256) {
                anyhow::bail!("the sha256 of {} is not a sha256", package.nevra);
            }
            if let Some(base) = &package.replaces
                && Nevra::parse(base).is_none()
            {
                anyhow::bail!("{} replaces {base:?}, which is not a NEVRA", package.nevra);
            }
        }
        Ok(lock)
    }

    /// The origin a host layering this lockfile gets: `origin` with the lockfile's request and
    /// overrides.
    pub(crate) fn apply_to(&self, mut origin: Origin) -> Origin {
        origin.requested = self.requested.clone();
        origin.requested_local = self.local_packages(false).collect();
        origin.modules.enable = self.modules.enable.clone();
        origin.modules.install = self.modules.install.clone();
        origin.skip_scripts = self.skip_scripts.clone();
        origin.override_remove = self.overrides.remove.clone();
        origin.override_replace_local = self.local_packages(true).collect();
        origin.override_replace_remote = self
            .overrides
            .replace_from
            .iter()
            .map(|r| (r.repo.clone(), r.packages.clone()))
            .collect();
        origin
    }

    /// The local RPMs of the layer with their sha256: the replacements of base packages, or the
    /// others.
    fn local_packages(&self, replacements: bool) -> impl Iterator<Item = (Nevra, String)> + '_ {
        self.packages
            .iter()
            .filter(move |p| p.repo == LOCAL_REPO && p.replaces.is_some() == replacements)
            .filter_map(|p| Some((Nevra::parse(&p.nevra)?, p.sha256.clone())))
    }

    /// The packages to take from repos, as exact requests (`name-[epoch:]version-release.arch`);
    /// replacements of base packages are had through the overrides.
    pub(crate) fn repo_requests(&self) -> Vec<String> {
        self.packages
            .iter()
            .filter(|p| p.repo != LOCAL_REPO && p.replaces.is_none())
            .map(|p| p.nevra.clone())
            .collect()
    }

    /// The remote replacements pinned to the locked builds: for each repo of
    /// `[overrides] replace=`, the NEVRA the lockfile has from it for each name. A name without
    /// one (the override was inactive: the base had that build) stays a name, and is inactive
    /// again on the same base.
    pub(crate) fn pinned_remote_replacements(&self) -> Vec<(String, Vec<String>)> {
        self.overrides
            .replace_from
            .iter()
            .map(|r| {
                let pinned = r
                    .packages
                    .iter()
                    .map(|name| {
                        self.packages
                            .iter()
                            .filter(|p| p.replaces.is_some() && p.repo == r.repo)
                            .find(|p| Nevra::parse(&p.nevra).is_some_and(|n| n.name == *name))
                            .map_or_else(|| name.clone(), |p| p.nevra.clone())
                    })
                    .collect();
                (r.repo.clone(), pinned)
            })
            .collect()
    }

    /// Local RPM files named beside the lockfile: each must be one of its local packages (by
    /// sha256), which hosts that never had them in their package cache need.
    pub fn local_files(&self, paths: &[String]) -> Result<Vec<LocalFile>> {
        let mut files = Vec::new();
        for text in paths {
            let path = Path::new(text);
            if !text.ends_with(".rpm") || !path.is_file() {
                return Err(UserError::new(format!(
                    "{text}: with a lockfile, only the .rpm files of its local packages can be named"
                ))
                .hint("the lockfile says which packages to layer; give no package names beside it")
                .into());
            }
            let file = crate::request::read_local_rpm(path)?;
            if !self
                .packages
                .iter()
                .any(|p| p.repo == LOCAL_REPO && p.sha256 == file.sha256)
            {
                return Err(UserError::new(format!(
                    "{text} ({}, sha256 {}) is not a local package of the lockfile",
                    file.nevra, file.sha256
                ))
                .hint("give the very .rpm files the locked host layered (the lockfile lists their sha256)")
                .into());
            }
            files.push(file);
        }
        Ok(files)
    }

    /// Checks that `resolved` is exactly the locked layer: the same NEVRAs, each repo package
    /// with the locked sha256. Every difference is named. Returns the locked sha256 of the repo
    /// packages whose metadata gives another kind of checksum: those are checked once fetched
    /// ([`check_fetched`]).
    pub(crate) fn check(&self, resolved: &[PlannedPackage]) -> Result<BTreeMap<Nevra, String>> {
        let mut after_fetch = BTreeMap::new();
        let locked: BTreeMap<&str, &LockedPackage> = self
            .packages
            .iter()
            .map(|p| (p.nevra.as_str(), p))
            .collect();
        let mut problems = Vec::new();
        for package in resolved {
            let nevra = package.nevra.to_string();
            let Some(lock) = locked.get(nevra.as_str()) else {
                problems.push(format!(
                    "{nevra} (from {}) is not in the lockfile",
                    package.repo
                ));
                continue;
            };
            if package.repo == LOCAL_REPO {
                continue;
            }
            match &package.checksum {
                Some(sum) if sum.algorithm == crate::repo::repomd::ChecksumAlgorithm::Sha256 => {
                    if sum.hex != lock.sha256 {
                        problems.push(format!(
                            "{nevra} in repo {} is another build (sha256 {}) than the lockfile's ({})",
                            package.repo, sum.hex, lock.sha256
                        ));
                    }
                }
                _ => {
                    after_fetch.insert(package.nevra.clone(), lock.sha256.clone());
                }
            }
        }
        let resolved: BTreeSet<String> = resolved.iter().map(|p| p.nevra.to_string()).collect();
        for package in &self.packages {
            if !resolved.contains(&package.nevra) {
                problems.push(format!("{} is locked but was not resolved", package.nevra));
            }
        }
        if problems.is_empty() {
            return Ok(after_fetch);
        }
        Err(UserError::new(format!(
            "the repos do not give the lockfile's layer exactly:\n  {}",
            problems.join("\n  ")
        ))
        .hint("enable the repos the lockfile's packages came from, or write a new lockfile")
        .into())
    }
}

/// Checks the packages whose sha256 only their file tells (`locked`, from [`Lockfile::check`])
/// against the package cache's copies, `cached`.
pub(crate) fn check_fetched(
    locked: &BTreeMap<Nevra, String>,
    cached: &[crate::package_cache::CachedPackage],
) -> Result<()> {
    let problems: Vec<String> = cached
        .iter()
        .filter_map(|package| {
            let want = locked.get(&package.nevra)?;
            (*want != package.sha256).then(|| {
                format!(
                    "{} is another build (sha256 {}) than the lockfile's ({want})",
                    package.nevra, package.sha256
                )
            })
        })
        .collect();
    if problems.is_empty() {
        return Ok(());
    }
    Err(UserError::new(format!(
        "the packages fetched are not the lockfile's builds:\n  {}",
        problems.join("\n  ")
    ))
    .hint("enable the repos the lockfile's packages came from, or write a new lockfile; nothing was deployed")
    .into())
}

fn is_checksum(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Lockfile {
        Lockfile {
            lockfile_version: 1,
            base: LockedBase {
                commit: "a".repeat(64),
                refspec: Some("vendor:os/x86_64/stable".into()),
                version: Some("1".into()),
            },
            requested: ["strace".to_string()].into(),
            modules: LockedModules::default(),
            skip_scripts: BTreeSet::new(),
            overrides: LockedOverrides::default(),
            packages: vec![LockedPackage {
                nevra: "strace-6.1-1.x86_64".into(),
                sha256: "b".repeat(64),
                repo: "fedora".into(),
                replaces: None,
            }],
        }
    }

    #[test]
    fn a_lockfile_reads_back_as_written() {
        let lock = example();
        assert_eq!(Lockfile::parse(&lock.to_json()).unwrap(), lock);
    }

    #[test]
    fn overrides_are_written_only_when_there_are_some() {
        let plain = example().to_json();
        assert!(
            !plain.contains("overrides") && !plain.contains("replaces"),
            "{plain}"
        );
        let mut lock = example();
        lock.overrides.remove.insert("firefox".into());
        lock.overrides.replace_from.push(LockedRemoteReplacement {
            repo: "updates".into(),
            packages: vec!["glibc".into(), "bash".into()],
        });
        lock.packages.push(LockedPackage {
            nevra: "glibc-2.39-2.x86_64".into(),
            sha256: "c".repeat(64),
            repo: "updates".into(),
            replaces: Some("glibc-2.39-1.x86_64".into()),
        });
        let text = lock.to_json();
        assert_eq!(Lockfile::parse(&text).unwrap(), lock);
        assert_eq!(
            lock.pinned_remote_replacements(),
            [(
                "updates".to_string(),
                vec!["glibc-2.39-2.x86_64".to_string(), "bash".to_string()]
            )]
        );
        assert_eq!(lock.repo_requests(), ["strace-6.1-1.x86_64"]);
        let origin = lock.apply_to(Origin::new("vendor:os/x86_64/stable"));
        assert!(origin.override_remove.contains("firefox"));
        assert_eq!(
            origin.override_replace_remote,
            [(
                "updates".to_string(),
                vec!["glibc".to_string(), "bash".to_string()]
            )]
        );
        let bad = text.replace("\"glibc-2.39-1.x86_64\"", "\"not a nevra\"");
        let err = Lockfile::parse(&bad).unwrap_err().to_string();
        assert!(err.contains("not a NEVRA"), "{err}");
    }

    #[test]
    fn another_version_or_a_bad_field_is_refused() {
        let text = example().to_json();
        let newer = text.replace("\"lockfile-version\": 1", "\"lockfile-version\": 2");
        let err = Lockfile::parse(&newer).unwrap_err().to_string();
        assert!(err.contains("format version 2"), "{err}");
        let bad_sha = text.replace(&"b".repeat(64), "xyz");
        let err = Lockfile::parse(&bad_sha).unwrap_err().to_string();
        assert!(err.contains("strace-6.1-1.x86_64"), "{err}");
        assert!(Lockfile::parse("{}").is_err());
    }
}
