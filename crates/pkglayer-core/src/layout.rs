//! Where pkglayer keeps things on a host: the folders of the stateroot's cache and state, and the ref
//! namespaces it owns in the sysroot's repo.
//!
//! Each name is written here only, so the pipeline, retention and the tests agree on it. A cache
//! folder's name ends in a version that changes with its layout: a new pkglayer then starts an empty
//! folder beside the old one instead of misreading it, and `cleanup --cache` removes what is left.

use std::path::{Path, PathBuf};

use crate::rpm::Nevra;

/// A folder of the stateroot's cache ([`Cache`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheFolder {
    /// Repo metadata, a folder a repo (`<id>-<hash of its URLs>`).
    RepoMetadata,
    /// Copies of base rpm databases and their `.solv`, a folder a base commit.
    BaseRpmdb,
    /// Solver caches of repo metadata, keyed by the checksum of its `repomd.xml`.
    Solv,
    /// RPMs between download and import.
    Downloads,
}

impl CacheFolder {
    /// The folder's name under the cache root.
    pub fn name(self) -> &'static str {
        match self {
            CacheFolder::RepoMetadata => "repomd-v1",
            CacheFolder::BaseRpmdb => "base-v1",
            CacheFolder::Solv => "solv-v1",
            CacheFolder::Downloads => "packages-v1",
        }
    }
}

/// The stateroot's cache, `/var/cache/pkglayer` as its deployments see it: shared by them, kept
/// across upgrades, and everything in it can be fetched or computed again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// The cache whose root folder is `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Cache { root: root.into() }
    }

    /// The cache's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `folder` is.
    pub fn folder(&self, folder: CacheFolder) -> PathBuf {
        self.root.join(folder.name())
    }
}

/// The stateroot's state, `/var/lib/pkglayer` as its deployments see it: what must outlive any
/// cache cleanup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    root: PathBuf,
}

impl State {
    /// The state whose root folder is `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        State { root: root.into() }
    }

    /// The user and group IDs layering gave out on this machine (see the `users` module).
    pub fn id_allocations(&self) -> PathBuf {
        self.root.join("ids")
    }

    /// What holds the sysroot lock, while a pkglayer operation does (`PID VERB SINCE`), for `status`.
    pub fn operation(&self) -> PathBuf {
        self.root.join("operation")
    }

    /// The last automatic update run: when, under which policy, and how it ended (see the
    /// `automatic` module).
    pub fn automatic_updates(&self) -> PathBuf {
        self.root.join("automatic-update")
    }
}

/// The ref namespaces pkglayer owns in the sysroot's repo.
pub mod refs {
    use super::Nevra;

    /// The package cache: `pkglayer/pkg/<name>/<evr>.<arch>`, a package from a repo.
    pub const PACKAGES: &str = "pkglayer/pkg/";
    /// The package cache: `pkglayer/local/<sha256 of the file>`, a local RPM (two builds with one
    /// NEVRA are two packages).
    pub const LOCAL_PACKAGES: &str = "pkglayer/local/";
    /// Base commits a deployment layers on: `pkglayer/base/<commit>` keeps each from the prune.
    pub const BASES: &str = "pkglayer/base/";
    /// Results of package scripts: `pkglayer/scripts/<sha256 of their inputs>`.
    pub const SCRIPT_RESULTS: &str = "pkglayer/scripts/";

    /// The cache ref of a package from a repo; bytes a ref cannot hold are escaped.
    pub fn package(nevra: &Nevra) -> String {
        format!(
            "{PACKAGES}{}/{}",
            escape(&nevra.name),
            escape(&format!("{}.{}", nevra.evr(), nevra.arch))
        )
    }

    /// The cache ref of a local package: the sha256 of its file.
    pub fn local_package(sha256: &str) -> String {
        format!("{LOCAL_PACKAGES}{sha256}")
    }

    /// The ref that pins `commit` while a deployment layers on it.
    pub fn base(commit: &str) -> String {
        format!("{BASES}{commit}")
    }

    /// The ref of the script result whose inputs hash to `key`.
    pub fn script_result(key: &str) -> String {
        format!("{SCRIPT_RESULTS}{key}")
    }

    /// `[A-Za-z0-9.-]` as is, `_` as `__`, every other byte as `_XX`.
    fn escape(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for byte in text.bytes() {
            match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' => out.push(byte as char),
                b'_' => out.push_str("__"),
                other => out.push_str(&format!("_{other:02X}")),
            }
        }
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn package_refs_escape_what_refs_cannot_hold() {
            let nevra = Nevra::parse("python3_foo+bar-1:2.0~rc1-3.fc40.x86_64").unwrap();
            assert_eq!(
                package(&nevra),
                "pkglayer/pkg/python3__foo_2Bbar/1_3A2.0_7Erc1-3.fc40.x86__64"
            );
        }

        #[test]
        fn every_ref_is_in_its_namespace() {
            let nevra = Nevra::parse("strace-6.1-1.x86_64").unwrap();
            assert!(package(&nevra).starts_with(PACKAGES));
            assert_eq!(local_package("ab12"), "pkglayer/local/ab12");
            assert_eq!(base("c0ffee"), "pkglayer/base/c0ffee");
            assert_eq!(script_result("f00d"), "pkglayer/scripts/f00d");
        }
    }
}
