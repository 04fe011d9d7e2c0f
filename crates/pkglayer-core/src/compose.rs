//! Building the layered commit: base tree + package trees + one rpmdb, straight from OSTree objects.
//!
//! The base tree is loaded lazily (`MutableTree::from_commit`), each package tree is merged into it
//! by checksum, and only directories on the path of a changed file are written anew: the cost follows
//! what is layered, not the size of the base.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use fn_error_context::context;
use ostree::gio;
use ostree::gio::prelude::*;
use ostree::glib;

use crate::command::CommandExt;
use crate::error::UserError;
use crate::rpm::Nevra;
use crate::rpm::import::{self, CachedPackage};
use crate::scripts::{self, LayeredPackage, sandbox};

/// Commit metadata keys of a layered commit (status, plan and layer read them back).
pub const META_BASE_COMMIT: &str = "pkglayer.base-commit";
pub const META_PACKAGES: &str = "pkglayer.packages";
pub const META_REQUESTED: &str = "pkglayer.requested";
pub const META_STATE_DIGEST: &str = "pkglayer.state-digest";

/// What the layered commit is made of.
pub struct Layer<'a> {
    pub base_commit: &'a str,
    pub packages: &'a [CachedPackage],
    /// The request (origin's `requested`), recorded in the commit.
    pub requested: &'a [String],
    pub state_digest: &'a str,
    /// Names of packages whose scripts and file triggers do not run.
    pub skip_scripts: &'a BTreeSet<String>,
}

/// Writes the layered commit and returns its checksum. Writes only new objects (no refs).
#[context("Composing the layered tree")]
pub fn compose(repo: &ostree::Repo, layer: &Layer) -> Result<String> {
    let scratch = tempfile::tempdir().context("Creating a scratch directory")?;
    let (base_variant, _) = repo.load_commit(layer.base_commit)?;
    let base_metadata = glib::VariantDict::new(Some(&base_variant.child_value(0)));

    repo.prepare_transaction(gio::Cancellable::NONE)?;
    let result = (|| -> Result<String> {
        let tree = ostree::MutableTree::from_commit(repo, layer.base_commit)?;
        let mut owners: HashMap<String, Nevra> = HashMap::new();
        for package in layer.packages {
            let (root, _) = repo.read_commit(&package.commit, gio::Cancellable::NONE)?;
            merge_tree(&root, &tree, "", &package.nevra, &mut owners)?;
        }
        let db_root = scratch.path().join("root");
        let dbpath = crate::rpmdb::checkout_rpmdb(repo, layer.base_commit, &db_root)?;
        run_scripts(repo, layer, &tree, &db_root, &dbpath)?;
        write_rpmdb(repo, layer, &tree, scratch.path(), &db_root, &dbpath)?;

        let root = repo.write_mtree(&tree, gio::Cancellable::NONE)?;
        let root = root
            .downcast::<ostree::RepoFile>()
            .expect("write_mtree returns a RepoFile");
        let metadata = glib::VariantDict::new(None);
        if let Some(version) = base_metadata.lookup::<String>("version").ok().flatten() {
            metadata.insert("version", version);
        }
        metadata.insert(META_BASE_COMMIT, layer.base_commit.to_string());
        metadata.insert(META_REQUESTED, layer.requested.to_vec());
        let nevras: Vec<String> = layer.packages.iter().map(|p| p.nevra.to_string()).collect();
        metadata.insert(META_PACKAGES, nevras);
        metadata.insert(META_STATE_DIGEST, layer.state_digest.to_string());
        let commit = repo.write_commit(
            Some(layer.base_commit),
            Some("pkglayer: layered packages"),
            None,
            Some(&metadata.end()),
            &root,
            gio::Cancellable::NONE,
        )?;
        repo.commit_transaction(gio::Cancellable::NONE)?;
        Ok(commit.to_string())
    })();
    if result.is_err() {
        let _ = repo.abort_transaction(gio::Cancellable::NONE);
    }
    result
}

/// Merges the package tree `source` into `target`. Identical files are fine; a different file at the
/// same path is a conflict naming both owners.
fn merge_tree(
    source: &gio::File,
    target: &ostree::MutableTree,
    path: &str,
    package: &Nevra,
    owners: &mut HashMap<String, Nevra>,
) -> Result<()> {
    for (name, file_type) in crate::tree::children(source)? {
        let child = source.child(&name);
        let child_path = format!("{path}/{name}");
        let repo_file = child
            .downcast_ref::<ostree::RepoFile>()
            .expect("a commit's files are RepoFiles");
        let existing = crate::tree::mtree_lookup(target, &name)?;
        if file_type == gio::FileType::Directory {
            repo_file.ensure_resolved()?;
            let dir = match existing {
                (_, Some(dir)) => dir,
                (Some(_), None) => {
                    return Err(conflict(&child_path, package, owners.get(&child_path)));
                }
                (None, None) => {
                    let dir = target.ensure_dir(&name)?;
                    dir.set_metadata_checksum(
                        &repo_file.tree_get_metadata_checksum().unwrap_or_default(),
                    );
                    dir
                }
            };
            merge_tree(&child, &dir, &child_path, package, owners)?;
            continue;
        }
        let checksum = repo_file.checksum().to_string();
        match existing {
            (Some(current), None) if current == checksum => {}
            (None, None) => {
                target.replace_file(&name, &checksum)?;
                owners.insert(child_path, package.clone());
            }
            _ => return Err(conflict(&child_path, package, owners.get(&child_path))),
        }
    }
    Ok(())
}

fn conflict(path: &str, package: &Nevra, other: Option<&Nevra>) -> anyhow::Error {
    let other = match other {
        Some(other) => format!("package {other}"),
        None => "the base image".to_string(),
    };
    UserError::new(format!(
        "file conflict: {path} of package {package} differs from the one in {other}"
    ))
    .hint("layer only one of the two packages; packages cannot replace files of the base image")
    .into()
}

/// Runs the layering's scripts and file triggers (if any) on the tree as composed so far and writes
/// their effects into it. The rpm database is left out: [`write_rpmdb`] writes it afterwards.
fn run_scripts(
    repo: &ostree::Repo,
    layer: &Layer,
    tree: &ostree::MutableTree,
    db_root: &Path,
    dbpath: &str,
) -> Result<()> {
    let started = std::time::Instant::now();
    let layered = layer
        .packages
        .iter()
        .map(|p| LayeredPackage::from_head(&import::head(repo, &p.commit)?))
        .collect::<Result<Vec<_>>>()?;
    let base_triggers = scripts::triggers::installed_triggers(db_root, dbpath)?;
    let planned = scripts::plan_scripts(&layered, &base_triggers, layer.skip_scripts);
    if planned.is_empty() {
        return Ok(());
    }

    // The sandbox checks out a commit: write the tree as it stands, outside of any ref.
    let root = repo.write_mtree(tree, gio::Cancellable::NONE)?;
    let root = root
        .downcast::<ostree::RepoFile>()
        .expect("write_mtree returns a RepoFile");
    let commit = repo.write_commit(
        None,
        Some("pkglayer: tree for scripts"),
        None,
        None,
        &root,
        gio::Cancellable::NONE,
    )?;
    repo.commit_transaction(gio::Cancellable::NONE)?;
    let effects = sandbox::run(repo, &commit, &planned, &[])?;
    for (index, output) in &effects.outputs {
        let script = &planned[*index];
        for line in output.lines() {
            tracing::info!("{} of {}: {line}", script.slot, script.package);
        }
    }
    repo.prepare_transaction(gio::Cancellable::NONE)?;
    let usr = crate::tree::mtree_lookup(tree, "usr")?
        .1
        .context("the tree has no usr directory")?;
    let ignore = |path: &str| {
        path == dbpath
            || path.starts_with(&format!("{dbpath}/"))
            // Lock and backup files of the shadow tools.
            || matches!(
                path,
                "usr/etc/.pwd.lock" | "usr/etc/passwd-" | "usr/etc/group-" | "usr/etc/shadow-" | "usr/etc/gshadow-"
            )
    };
    let changed = sandbox::apply_changes(repo, &effects.upper(), &usr, &ignore)?;
    tracing::debug!("scripts changed {}", changed.join(", "));
    crate::log_phase(&format!("scripts ({} run)", planned.len()), started);
    Ok(())
}

/// Adds the packages' headers to a copy of the base rpmdb with the real rpm, then puts the database
/// files into the tree (in `journal_mode=DELETE`, without `-wal`/`-shm`, since the tree is read-only).
fn write_rpmdb(
    repo: &ostree::Repo,
    layer: &Layer,
    tree: &ostree::MutableTree,
    scratch: &Path,
    root: &Path,
    dbpath: &str,
) -> Result<()> {
    let heads = scratch.join("heads");
    std::fs::create_dir_all(&heads)?;
    let mut files = Vec::new();
    for package in layer.packages {
        let path = heads.join(format!("{}.rpm", package.nevra));
        std::fs::write(&path, import::head(repo, &package.commit)?)?;
        files.push(path);
    }
    if !files.is_empty() {
        Command::new("rpm")
            .arg("--root")
            .arg(root)
            .arg("--dbpath")
            .arg(format!("/{dbpath}"))
            .args(["-i", "--justdb", "--nodeps", "--noscripts", "--notriggers"])
            .args([
                "--nodigest",
                "--nosignature",
                "--ignorearch",
                "--ignoreos",
                "--ignoresize",
            ])
            .args(&files)
            .run_capture()
            .context("Adding the layered packages to the rpm database")?;
    }
    let dbdir = root.join(dbpath);
    crate::rpmdb::finalize(&dbdir)?;

    // Step down by lookups: they load lazily-read directories the way later edits need.
    let mut dir_tree = tree.clone();
    for part in dbpath.split('/') {
        dir_tree = crate::tree::mtree_lookup(&dir_tree, part)?
            .1
            .with_context(|| format!("{dbpath} is not a directory in the base tree"))?;
    }
    for entry in std::fs::read_dir(&dbdir)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let bytes = std::fs::read(entry.path())?;
        let checksum = repo.write_regfile_inline(
            None,
            0,
            0,
            libc::S_IFREG | 0o644,
            None,
            &bytes,
            gio::Cancellable::NONE,
        )?;
        let name = entry.file_name().to_string_lossy().into_owned();
        dir_tree.replace_file(&name, &checksum)?;
    }
    if crate::tree::mtree_lookup(&dir_tree, "rpmdb.sqlite")?
        .0
        .is_none()
    {
        bail!("the rpm database at {dbpath} has no rpmdb.sqlite after adding the packages");
    }
    Ok(())
}
