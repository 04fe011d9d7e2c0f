//! The package cache: each RPM imported once into the sysroot's repo, as its own parentless commit.
//!
//! A package from a repo has the ref [`layout::refs::package`], a local one
//! [`layout::refs::local_package`]. The commit's tree is the payload with OSTree's path rules applied
//! ([`crate::rpm::payload`]), and its metadata keeps what later steps need without the RPM file
//! ([`PackageRecord`]): the RPM's head (enough for `rpm --justdb`), the sha256 of the file, the
//! NEVRA and the repo it came from.

use std::io::Cursor;
use std::path::Path;

use anyhow::{Context, Result, bail};
use fn_error_context::context;
use ostree::gio;
use ostree::glib::prelude::*;

use crate::commit_metadata::{CachedPackageInfo, PackageRecord};
use crate::error::UserError;
use crate::layout;
use crate::rpm::Nevra;
use crate::rpm::digests::DigestError;
use crate::rpm::header_check::Layout;
use crate::users::Accounts;

/// Where an RPM came from, recorded with it.
#[derive(Debug, Clone, Default)]
pub struct PackageOrigin {
    pub repo: String,
    /// sha256 of the repo's `repomd.xml` when the package was fetched.
    pub repo_checksum: String,
}

/// A package in the cache.
#[derive(Debug, Clone)]
pub struct CachedPackage {
    pub nevra: Nevra,
    pub commit: String,
    /// sha256 of the RPM file.
    pub sha256: String,
}

/// The cached package for `nevra`, if it was imported before.
pub fn lookup(repo: &ostree::Repo, nevra: &Nevra) -> Result<Option<CachedPackage>> {
    let Some(commit) = repo.resolve_rev(&layout::refs::package(nevra), true)? else {
        return Ok(None);
    };
    Ok(Some(CachedPackage {
        nevra: nevra.clone(),
        sha256: CachedPackageInfo::load(repo, &commit)?
            .sha256()
            .unwrap_or_default(),
        commit: commit.to_string(),
    }))
}

/// The cached local package whose file has digest `sha256`, if it was imported before.
pub fn lookup_local(
    repo: &ostree::Repo,
    nevra: &Nevra,
    sha256: &str,
) -> Result<Option<CachedPackage>> {
    let Some(commit) = repo.resolve_rev(&layout::refs::local_package(sha256), true)? else {
        return Ok(None);
    };
    Ok(Some(CachedPackage {
        nevra: nevra.clone(),
        sha256: sha256.to_string(),
        commit: commit.to_string(),
    }))
}

/// The RPM head (lead, signature, header) stored with a cached package.
pub fn head(repo: &ostree::Repo, commit: &str) -> Result<Vec<u8>> {
    CachedPackageInfo::load(repo, commit)?
        .head()
        .with_context(|| format!("cached package commit {commit} has no RPM header"))
}

/// The head of the RPM file at `path` (lead, signature and main header) and where its parts are.
pub(crate) fn read_head(path: &Path) -> Result<(Vec<u8>, Layout)> {
    let file = std::fs::File::open(path).with_context(|| format!("Opening {}", path.display()))?;
    crate::rpm::header_check::read_head(&mut std::io::BufReader::new(file))
        .context("not a readable RPM")
}

/// Imports the RPM file at `path` into the cache, in a transaction of its own, and returns it.
pub(crate) fn import(
    repo: &ostree::Repo,
    path: &Path,
    expected: Option<&Nevra>,
    accounts: &Accounts,
    origin: &PackageOrigin,
) -> Result<CachedPackage> {
    repo.prepare_transaction(gio::Cancellable::NONE)?;
    let result =
        import_in_transaction(repo, path, expected, accounts, origin).and_then(|package| {
            repo.commit_transaction(gio::Cancellable::NONE)?;
            Ok(package)
        });
    if result.is_err() {
        let _ = repo.abort_transaction(gio::Cancellable::NONE);
    }
    result
}

/// Imports the RPM file at `path` into the cache, in the transaction `repo` has open, and returns
/// it. Writes only new objects and one ref (both visible once the transaction is committed). The
/// file is read as a stream, twice (digests, then payload): memory stays bounded whatever its size.
#[context("Importing {}", expected.map(|n| n.to_string()).unwrap_or_else(|| "an RPM".into()))]
pub(crate) fn import_in_transaction(
    repo: &ostree::Repo,
    path: &Path,
    expected: Option<&Nevra>,
    accounts: &Accounts,
    origin: &PackageOrigin,
) -> Result<CachedPackage> {
    let (head, head_layout) = read_head(path)?;
    let metadata =
        ::rpm::PackageMetadata::parse(&mut Cursor::new(&head)).context("not a readable RPM")?;
    let nevra = Nevra::of_header(&metadata)?;
    if let Some(expected) = expected.filter(|e| **e != nevra) {
        bail!("the file holds {nevra}, not {expected}");
    }
    // The RPM's own digests: a file altered after it was built is refused, whatever the repo
    // metadata says of it. Only a digest it carries and fails is a sign of that.
    let sha256 = crate::rpm::digests::verify_file(path, &head, head_layout, &metadata).map_err(
        |err| match err.downcast::<DigestError>() {
            Ok(DigestError::Mismatch(why)) => UserError::new(format!(
                "the RPM of {nevra} is corrupt or was tampered with: {why}"
            ))
            .hint("nothing was imported; report it to the repository's owner")
            .into(),
            Ok(DigestError::Missing) => UserError::new(format!(
                "the RPM of {nevra} carries no digest of its header, so nothing tells whether it is intact"
            ))
            .hint("nothing was imported; rebuild the package with rpmbuild, which records its digests")
            .into(),
            Err(other) => other,
        },
    )?;

    let tree = crate::rpm::payload::write(repo, path, &head, &nevra, accounts)?;
    let record = PackageRecord {
        nevra: &nevra,
        head: &head,
        sha256: &sha256,
        repo: &origin.repo,
        repo_checksum: &origin.repo_checksum,
        owners: &tree.named_owners,
    };
    let root = tree
        .root
        .downcast::<ostree::RepoFile>()
        .expect("write_mtree returns a RepoFile");
    let commit = repo.write_commit_with_time(
        None,
        Some(&nevra.to_string()),
        None,
        Some(&record.to_variant()),
        &root,
        0,
        gio::Cancellable::NONE,
    )?;
    // A local package is its file: two builds with one NEVRA are two packages.
    let ref_name = if origin.repo == crate::solver::LOCAL_REPO {
        layout::refs::local_package(&sha256)
    } else {
        layout::refs::package(&nevra)
    };
    repo.transaction_set_ref(None, &ref_name, Some(&commit));
    Ok(CachedPackage {
        nevra,
        commit: commit.to_string(),
        sha256,
    })
}
