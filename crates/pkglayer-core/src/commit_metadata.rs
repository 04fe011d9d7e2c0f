//! What pkglayer records in the metadata of the commits it writes, and reading it back.
//!
//! Two kinds of commits carry `pkglayer.*` keys. A layered commit records what its layer is made of
//! (`LayerRecord`), so status, planning and retention read a deployment from its commit alone. A
//! package-cache commit records what later steps need of an RPM without the file
//! (`PackageRecord`). The keys are named in this module only; their names and variant types are a
//! format that commits already on disk use.

use anyhow::{Context, Result};
use ostree::glib;
use ostree::glib::variant::{FromVariant, ToVariant};

use crate::origin::Origin;
use crate::rpm::Nevra;

/// Keys of a layered commit.
const BASE_COMMIT: &str = "pkglayer.base-commit";
const PACKAGES: &str = "pkglayer.packages";
const REQUESTED: &str = "pkglayer.requested";
const STATE_DIGEST: &str = "pkglayer.state-digest";
const INACTIVE_REQUESTS: &str = "pkglayer.inactive-requests";
/// `as`: NEVRAs of the base packages the layer removes (`override remove`).
const BASE_REMOVALS: &str = "pkglayer.base-removals";
/// `a(ss)`: (base NEVRA, NEVRA of its replacement) for each replaced base package.
const BASE_REPLACEMENTS: &str = "pkglayer.base-replacements";
/// `as`: overrides that did not apply to the base (names, NEVRAs).
const INACTIVE_OVERRIDES: &str = "pkglayer.inactive-overrides";
/// The vendor's version of a commit (ostree's own key); a layered commit repeats its base's.
const VERSION: &str = "version";
/// ostree's and bootc's mark of a commit meant to be booted; every layered commit has it.
const BOOTABLE: &str = "ostree.bootable";
/// The vendor's end-of-life notice for a commit (ostree's key); a layered commit repeats its base's.
const ENDOFLIFE: &str = "ostree.endoflife";

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
    /// The same metadata as the `a{sv}` it came in (a `VariantDict` empties itself when ended).
    variant: glib::Variant,
    timestamp: u64,
}

impl CommitInfo {
    /// Loads `commit` from `repo`.
    pub(crate) fn load(repo: &ostree::Repo, commit: &str) -> Result<Self> {
        let (variant, _) = repo
            .load_commit(commit)
            .with_context(|| format!("Loading commit {commit}"))?;
        let metadata = variant.child_value(0);
        Ok(CommitInfo {
            metadata: glib::VariantDict::new(Some(&metadata)),
            variant: metadata,
            timestamp: ostree::commit_get_timestamp(&variant),
        })
    }

    /// The info of a commit with `metadata` (`a{sv}`) and `timestamp`, without a repo.
    #[cfg(test)]
    pub(crate) fn from_metadata(metadata: &glib::Variant, timestamp: u64) -> Self {
        CommitInfo {
            metadata: glib::VariantDict::new(Some(metadata)),
            variant: metadata.clone(),
            timestamp,
        }
    }

    /// Seconds since the epoch.
    pub(crate) fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// The vendor's version, if the commit has one.
    pub(crate) fn version(&self) -> Option<String> {
        self.get(VERSION)
    }

    /// The vendor's end-of-life notice (`ostree.endoflife`), if set.
    pub(crate) fn endoflife(&self) -> Option<String> {
        self.get(ENDOFLIFE)
    }

    /// The whole metadata as JSON (rpm-ostree's `base-commit-meta`): strings, numbers, booleans
    /// and arrays as themselves, anything else in GVariant's text form.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for entry in self.variant.iter() {
            let key = entry.child_value(0).str().unwrap_or_default().to_string();
            let value = entry.child_value(1);
            let value = value.as_variant().unwrap_or(value);
            map.insert(key, variant_to_json(&value));
        }
        map.into()
    }

    /// The value of `key`; absent or of another type, `None`.
    fn get<T: FromVariant>(&self, key: &str) -> Option<T> {
        self.metadata.lookup::<T>(key).ok().flatten()
    }
}

/// A GVariant value as JSON: see [`CommitInfo::to_json`].
fn variant_to_json(value: &glib::Variant) -> serde_json::Value {
    use glib::VariantClass as Class;
    match value.classify() {
        Class::String | Class::ObjectPath | Class::Signature => {
            value.str().unwrap_or_default().into()
        }
        Class::Boolean => value.get::<bool>().unwrap_or_default().into(),
        Class::Byte => value.get::<u8>().unwrap_or_default().into(),
        Class::Int16 => value.get::<i16>().unwrap_or_default().into(),
        Class::Uint16 => value.get::<u16>().unwrap_or_default().into(),
        Class::Int32 => value.get::<i32>().unwrap_or_default().into(),
        Class::Uint32 => value.get::<u32>().unwrap_or_default().into(),
        Class::Int64 => value.get::<i64>().unwrap_or_default().into(),
        Class::Uint64 => value.get::<u64>().unwrap_or_default().into(),
        Class::Double => value.get::<f64>().unwrap_or_default().into(),
        Class::Variant => value
            .as_variant()
            .map_or(serde_json::Value::Null, |inner| variant_to_json(&inner)),
        // Byte strings (e.g. checksums as `ay`) read better as their text form than as numbers.
        Class::Array if value.type_().as_str() != "ay" => {
            value.iter().map(|item| variant_to_json(&item)).collect()
        }
        _ => value.print(true).to_string().into(),
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
    /// Base packages the layer removes.
    pub base_removals: Vec<Nevra>,
    /// Base packages replaced: (base, replacement).
    pub base_replacements: Vec<(Nevra, Nevra)>,
    /// Overrides that do not apply to the base.
    pub inactive_overrides: Vec<String>,
}

impl DeploymentLayer {
    /// Reads the layer of `commit`.
    pub fn read(repo: &ostree::Repo, commit: &str) -> Result<Self> {
        Ok(Self::of(commit, &CommitInfo::load(repo, commit)?))
    }

    /// The layer of a deployment of `commit` whose origin is `origin`. A commit composed elsewhere
    /// (`pkglayer compose`, a fleet image) and deployed as it is — its origin layers nothing — is
    /// the host's base: the host layered nothing on it.
    pub fn of_deployment(repo: &ostree::Repo, commit: &str, origin: &Origin) -> Result<Self> {
        if origin.is_layered() {
            return Self::read(repo, commit);
        }
        Ok(DeploymentLayer {
            base_commit: commit.to_string(),
            packages: Vec::new(),
            inactive_requests: Vec::new(),
            state_digest: None,
            base_removals: Vec::new(),
            base_replacements: Vec::new(),
            inactive_overrides: Vec::new(),
        })
    }

    /// The packages a composed image (`pkglayer compose`) layered on its vendor base, when `base`
    /// (a host's base) is one; empty for a vendor's own commit.
    pub fn image_packages(repo: &ostree::Repo, base: &str) -> Result<Vec<Nevra>> {
        let layer = Self::read(repo, base)?;
        Ok(if layer.base_commit == base {
            Vec::new()
        } else {
            layer.packages
        })
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
            base_removals: info
                .get::<Vec<String>>(BASE_REMOVALS)
                .unwrap_or_default()
                .iter()
                .filter_map(|nevra| Nevra::parse(nevra))
                .collect(),
            base_replacements: info
                .get::<Vec<(String, String)>>(BASE_REPLACEMENTS)
                .unwrap_or_default()
                .iter()
                .filter_map(|(old, new)| Some((Nevra::parse(old)?, Nevra::parse(new)?)))
                .collect(),
            inactive_overrides: info.get(INACTIVE_OVERRIDES).unwrap_or_default(),
        }
    }
}

/// The metadata of a layered commit.
pub(crate) struct LayerRecord<'a> {
    pub base_commit: &'a str,
    /// The base's version, repeated so the layered commit shows it.
    pub version: Option<String>,
    /// The base's `ostree.endoflife`, repeated likewise.
    pub endoflife: Option<String>,
    /// The request (the origin's `requested`).
    pub requested: &'a [String],
    pub inactive_requests: &'a [String],
    pub packages: Vec<&'a Nevra>,
    pub state_digest: &'a str,
    pub base_removals: &'a [Nevra],
    pub base_replacements: &'a [(Nevra, Nevra)],
    pub inactive_overrides: &'a [String],
}

impl LayerRecord<'_> {
    /// The commit metadata `a{sv}`.
    pub(crate) fn to_variant(&self) -> glib::Variant {
        let metadata = glib::VariantDict::new(None);
        if let Some(version) = &self.version {
            metadata.insert(VERSION, version.as_str());
        }
        if let Some(endoflife) = &self.endoflife {
            metadata.insert(ENDOFLIFE, endoflife.as_str());
        }
        metadata.insert(BOOTABLE, true);
        metadata.insert(BASE_COMMIT, self.base_commit);
        metadata.insert(REQUESTED, self.requested.to_vec());
        metadata.insert(INACTIVE_REQUESTS, self.inactive_requests.to_vec());
        let nevras: Vec<String> = self.packages.iter().map(|n| n.to_string()).collect();
        metadata.insert(PACKAGES, nevras);
        metadata.insert(STATE_DIGEST, self.state_digest);
        if !self.base_removals.is_empty() {
            let nevras: Vec<String> = self.base_removals.iter().map(|n| n.to_string()).collect();
            metadata.insert(BASE_REMOVALS, nevras);
        }
        if !self.base_replacements.is_empty() {
            let pairs: Vec<(String, String)> = self
                .base_replacements
                .iter()
                .map(|(old, new)| (old.to_string(), new.to_string()))
                .collect();
            metadata.insert(BASE_REPLACEMENTS, pairs);
        }
        if !self.inactive_overrides.is_empty() {
            metadata.insert(INACTIVE_OVERRIDES, self.inactive_overrides.to_vec());
        }
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

    /// The repo id the package came from (`@commandline` for a local RPM).
    pub(crate) fn repo(&self) -> Option<String> {
        self.0.get(REPO)
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

#[cfg(test)]
mod tests {
    use super::*;

    const LAYERED: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const BASE: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn a_layer_record_reads_back_as_the_deployment_layer() {
        let strace = Nevra::parse("strace-6.1-1.x86_64").unwrap();
        let vim = Nevra::parse("vim-minimal-2:9.0-1.x86_64").unwrap();
        let nano = Nevra::parse("nano-7.2-1.x86_64").unwrap();
        let libfoo_old = Nevra::parse("libfoo-1.0-1.x86_64").unwrap();
        let libfoo_new = Nevra::parse("libfoo-1.1-1.x86_64").unwrap();
        let record = LayerRecord {
            base_commit: BASE,
            version: Some("40.20240101".into()),
            endoflife: None,
            requested: &["strace".into(), "vim-minimal".into()],
            inactive_requests: &["setup".into()],
            packages: vec![&strace, &vim],
            state_digest: "abc",
            base_removals: std::slice::from_ref(&nano),
            base_replacements: &[(libfoo_old.clone(), libfoo_new.clone())],
            inactive_overrides: &["firefox".into()],
        };
        let info = CommitInfo::from_metadata(&record.to_variant(), 1_700_000_000);
        assert_eq!(info.timestamp(), 1_700_000_000);
        assert_eq!(info.version().as_deref(), Some("40.20240101"));
        assert_eq!(
            info.get::<Vec<String>>(REQUESTED).unwrap(),
            ["strace", "vim-minimal"]
        );

        let layer = DeploymentLayer::of(LAYERED, &info);
        assert_eq!(layer.base_commit, BASE);
        assert_eq!(layer.packages, [strace, vim]);
        assert_eq!(layer.inactive_requests, ["setup"]);
        assert_eq!(layer.state_digest.as_deref(), Some("abc"));
        assert_eq!(layer.base_removals, [nano]);
        assert_eq!(layer.base_replacements, [(libfoo_old, libfoo_new)]);
        assert_eq!(layer.inactive_overrides, ["firefox"]);
    }

    #[test]
    fn a_plain_commit_is_its_own_base_and_layers_nothing() {
        let vendor = glib::VariantDict::new(None);
        vendor.insert(VERSION, "40.1");
        let info = CommitInfo::from_metadata(&vendor.end(), 0);
        assert_eq!(info.version().as_deref(), Some("40.1"));
        let layer = DeploymentLayer::of(BASE, &info);
        assert_eq!(layer.base_commit, BASE);
        assert!(layer.packages.is_empty());
        assert!(layer.inactive_requests.is_empty());
        assert_eq!(layer.state_digest, None);
        assert!(layer.base_removals.is_empty() && layer.base_replacements.is_empty());
    }

    #[test]
    fn a_value_of_another_type_reads_as_absent() {
        let odd = glib::VariantDict::new(None);
        odd.insert(BASE_COMMIT, 7u32);
        odd.insert(VERSION, 40u32);
        let info = CommitInfo::from_metadata(&odd.end(), 0);
        assert_eq!(info.version(), None);
        assert_eq!(DeploymentLayer::of(LAYERED, &info).base_commit, LAYERED);
    }

    #[test]
    fn a_package_record_reads_back_as_the_cached_package_info() {
        let nevra = Nevra::parse("httpd-2.4.62-1.x86_64").unwrap();
        let owners = [
            NamedOwner {
                path: "usr/share/httpd/cache".into(),
                user: "apache".into(),
                group: "apache".into(),
            },
            NamedOwner {
                path: "var/log/httpd".into(),
                user: "root".into(),
                group: "apache".into(),
            },
        ];
        let record = PackageRecord {
            nevra: &nevra,
            head: b"lead, signature, header",
            sha256: "cafe",
            repo: "fedora",
            repo_checksum: "beef",
            owners: &owners,
        };
        let info = CachedPackageInfo(CommitInfo::from_metadata(&record.to_variant(), 0));
        assert_eq!(info.sha256().as_deref(), Some("cafe"));
        assert_eq!(
            info.head().as_deref(),
            Some(&b"lead, signature, header"[..])
        );
        assert_eq!(info.owners(), owners);
        assert_eq!(
            info.0.get::<String>(NEVRA).as_deref(),
            Some("httpd-2.4.62-1.x86_64")
        );
        assert_eq!(
            info.0.get::<String>(RPM_HEAD_SHA256).as_deref(),
            Some("c8771c3b86d8b40128ceb2336d7bfbd7c34c986346fae25931d2a9143f66b70f")
        );
        assert_eq!(info.0.get::<String>(REPO).as_deref(), Some("fedora"));
        assert_eq!(info.0.get::<String>(REPO_CHECKSUM).as_deref(), Some("beef"));

        let unowned = PackageRecord {
            owners: &[],
            ..record
        };
        let info = CachedPackageInfo(CommitInfo::from_metadata(&unowned.to_variant(), 0));
        assert!(info.owners().is_empty());
    }
}
