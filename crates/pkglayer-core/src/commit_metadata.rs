//! What pkglayer records in the metadata of the commits it writes, and reading it back.
//!
//! Two kinds of commits carry `pkglayer.*` keys. A layered commit records what its layer is made of
//! ([`LayerRecord`]), so status, planning and retention read a deployment from its commit alone. A
//! package-cache commit records what later steps need of an RPM without the file
//! ([`PackageRecord`]). The keys are named in this module only; their names and variant types are a
//! format that commits already on disk use.

use anyhow::{Context, Result};
use ostree::glib;
use ostree::glib::variant::{FromVariant, ToVariant};

use crate::rpm::Nevra;

/// Keys of a layered commit.
const BASE_COMMIT: &str = "pkglayer.base-commit";
const PACKAGES: &str = "pkglayer.packages";
const REQUESTED: &str = "pkglayer.requested";
const STATE_DIGEST: &str = "pkglayer.state-digest";
const INACTIVE_REQUESTS: &str = "pkglayer.inactive-requests";
/// The vendor's version of a commit (ostree's own key); a layered commit repeats its base's.
const VERSION: &str = "version";

/// Keys of a package-cache commit.
const NEVRA: &str = "pkglayer.nevra";
const RPM_HEAD: &str = "pkglayer.rpm-head";
const RPM_HEAD_SHA256: &str = "pkglayer.rpm-head-sha256";
const RPM_SHA256: &str = "pkglayer.rpm-sha256";
const REPO: &str = "pkglayer.repo";
const REPO_CHECKSUM: &str = "pkglayer.repo-checksum";
/// `a(sss)`: tree path, user, group of every file and directory not owned by root:root.
const OWNERS: &str = "pkglayer.owners";

/// A commit's metadata and timestamp, loaded once.
pub(crate) struct CommitInfo {
    metadata: glib::VariantDict,
    timestamp: u64,
}

impl CommitInfo {
    /// Loads `commit` from `repo`.
    pub(crate) fn load(repo: &ostree::Repo, commit: &str) -> Result<Self> {
        let (variant, _) = repo
            .load_commit(commit)
            .with_context(|| format!("Loading commit {commit}"))?;
        Ok(CommitInfo {
            metadata: glib::VariantDict::new(Some(&variant.child_value(0))),
            timestamp: ostree::commit_get_timestamp(&variant),
        })
    }

    /// Seconds since the epoch.
    pub(crate) fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// The vendor's version, if the commit has one.
    pub(crate) fn version(&self) -> Option<String> {
        self.get(VERSION)
    }

    /// The value of `key`; absent or of another type, `None`.
    fn get<T: FromVariant>(&self, key: &str) -> Option<T> {
        self.metadata.lookup::<T>(key).ok().flatten()
    }
}

/// What a deployment's commit says about its layer. A plain commit is its own base and layers
/// nothing.
#[derive(Debug, Clone)]
pub struct DeploymentLayer {
    /// The vendor commit under the layer.
    pub base_commit: String,
    /// Every layered package.
    pub packages: Vec<Nevra>,
    /// Requests its base satisfies: kept in the origin, layering nothing.
    pub inactive_requests: Vec<String>,
    /// What the layered tree is a function of (see `plan`); `None` for a plain commit.
    pub state_digest: Option<String>,
}

impl DeploymentLayer {
    /// Reads the layer of `commit`.
    pub fn read(repo: &ostree::Repo, commit: &str) -> Result<Self> {
        Ok(Self::of(commit, &CommitInfo::load(repo, commit)?))
    }

    /// The layer recorded in `info`, the metadata of `commit`.
    pub(crate) fn of(commit: &str, info: &CommitInfo) -> Self {
        DeploymentLayer {
            base_commit: info.get(BASE_COMMIT).unwrap_or_else(|| commit.to_string()),
            // Written from parsed NEVRAs, so every entry parses again.
            packages: info
                .get::<Vec<String>>(PACKAGES)
                .unwrap_or_default()
                .iter()
                .filter_map(|nevra| Nevra::parse(nevra))
                .collect(),
            inactive_requests: info.get(INACTIVE_REQUESTS).unwrap_or_default(),
            state_digest: info.get(STATE_DIGEST),
        }
    }
}

/// The metadata of a layered commit.
pub(crate) struct LayerRecord<'a> {
    pub base_commit: &'a str,
    /// The base's version, repeated so the layered commit shows it.
    pub version: Option<String>,
    /// The request (the origin's `requested`).
    pub requested: &'a [String],
    pub inactive_requests: &'a [String],
    pub packages: Vec<&'a Nevra>,
    pub state_digest: &'a str,
}

impl LayerRecord<'_> {
    /// The commit metadata `a{sv}`.
    pub(crate) fn to_variant(&self) -> glib::Variant {
        let metadata = glib::VariantDict::new(None);
        if let Some(version) = &self.version {
            metadata.insert(VERSION, version.as_str());
        }
        metadata.insert(BASE_COMMIT, self.base_commit);
        metadata.insert(REQUESTED, self.requested.to_vec());
        metadata.insert(INACTIVE_REQUESTS, self.inactive_requests.to_vec());
        let nevras: Vec<String> = self.packages.iter().map(|n| n.to_string()).collect();
        metadata.insert(PACKAGES, nevras);
        metadata.insert(STATE_DIGEST, self.state_digest);
        metadata.end()
    }
}

/// A file or directory of a package owned by an account other than root: compose gives it its IDs
/// from the final tree, where accounts the layering itself creates exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NamedOwner {
    /// Path in the tree, relative.
    pub path: String,
    pub user: String,
    pub group: String,
}

/// The metadata of a package-cache commit.
pub(crate) struct PackageRecord<'a> {
    pub nevra: &'a Nevra,
    /// The RPM's lead, signature and header: its scripts, file list, and what `rpm --justdb` needs.
    pub head: &'a [u8],
    /// sha256 of the whole RPM file.
    pub sha256: &'a str,
    /// The repo it came from, and the checksum of that repo's `repomd.xml` then.
    pub repo: &'a str,
    pub repo_checksum: &'a str,
    pub owners: &'a [NamedOwner],
}

impl PackageRecord<'_> {
    /// The commit metadata `a{sv}`.
    pub(crate) fn to_variant(&self) -> glib::Variant {
        use sha2::Digest;
        let owners: Vec<(String, String, String)> = self
            .owners
            .iter()
            .map(|o| (o.path.clone(), o.user.clone(), o.group.clone()))
            .collect();
        let metadata = glib::VariantDict::new(None);
        metadata.insert(OWNERS, owners.to_variant());
        metadata.insert(NEVRA, self.nevra.to_string());
        metadata.insert(RPM_HEAD, self.head.to_vec());
        metadata.insert(
            RPM_HEAD_SHA256,
            hex::encode(sha2::Sha256::digest(self.head)),
        );
        metadata.insert(RPM_SHA256, self.sha256);
        metadata.insert(REPO, self.repo);
        metadata.insert(REPO_CHECKSUM, self.repo_checksum);
        metadata.end()
    }
}

/// What later steps read of a package-cache commit.
pub(crate) struct CachedPackageInfo(CommitInfo);

impl CachedPackageInfo {
    /// Loads the package-cache commit `commit`.
    pub(crate) fn load(repo: &ostree::Repo, commit: &str) -> Result<Self> {
        Ok(CachedPackageInfo(CommitInfo::load(repo, commit)?))
    }

    /// sha256 of the RPM file.
    pub(crate) fn sha256(&self) -> Option<String> {
        self.0.get(RPM_SHA256)
    }

    /// The RPM's head (lead, signature, header).
    pub(crate) fn head(&self) -> Option<Vec<u8>> {
        self.0.get(RPM_HEAD)
    }

    /// The files and directories not owned by root:root.
    pub(crate) fn owners(&self) -> Vec<NamedOwner> {
        self.0
            .get::<Vec<(String, String, String)>>(OWNERS)
            .unwrap_or_default()
            .into_iter()
            .map(|(path, user, group)| NamedOwner { path, user, group })
            .collect()
    }
}
