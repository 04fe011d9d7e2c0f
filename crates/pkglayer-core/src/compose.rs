//! Building the layered commit: base tree + package trees + one rpmdb, straight from OSTree objects.
//!
//! The base tree is loaded lazily (`MutableTree::from_commit`), each package tree is merged into it
//! by checksum, and only directories on the path of a changed file are written anew: the cost follows
//! what is layered, not the size of the base.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use anyhow::{Context, Result, bail};
use fn_error_context::context;
use ostree::gio;
use ostree::gio::prelude::*;

use crate::command::CommandExt;
use crate::commit_metadata::{CachedPackageInfo, CommitInfo, LayerRecord};
use crate::error::UserError;
use crate::package_cache::{self, CachedPackage};
use crate::progress::{Phase, PhaseGuard, Progress};
use crate::rpm::Nevra;
use crate::scripts::{self, LayeredPackage};
use crate::tree::FileObject;
use crate::users::{self, Kind};

/// What the layered commit is made of.
pub struct Layer<'a> {
    pub base_commit: &'a str,
    pub packages: &'a [CachedPackage],
    /// The request (origin's `requested`), recorded in the commit.
    pub requested: &'a [String],
    /// The requests the base satisfies.
    pub inactive_requests: &'a [String],
    pub state_digest: &'a str,
    /// Names of packages whose scripts and file triggers do not run.
    pub skip_scripts: &'a BTreeSet<String>,
    /// The machine's user and group ID allocations ([`crate::users`]).
    pub id_allocations: &'a Path,
    /// Base packages the layer goes without (`override remove`).
    pub removed_base: &'a [Nevra],
    /// Base packages replaced by layered ones: (base, replacement).
    pub replaced_base: &'a [(Nevra, Nevra)],
    /// Overrides that do not apply to the base.
    pub inactive_overrides: &'a [String],
    /// Trees checked out on this machine (deployments) the scripts' sandbox can stack on; of those
    /// the tree differs from equally, the first is taken.
    pub checkouts: &'a [scripts::Checkout],
}

/// Writes the layered commit and returns its checksum. Writes only new objects (no refs).
#[context("Composing the layered tree")]
pub fn compose(repo: &ostree::Repo, layer: &Layer, progress: &dyn Progress) -> Result<String> {
    let _phase = PhaseGuard::start(progress, Phase::Compose);
    let scratch = crate::scratch::create(repo, "compose")?;
    let base_info = CommitInfo::load(repo, layer.base_commit)?;
    let timestamp = layer_timestamp(&base_info)?;

    repo.prepare_transaction(gio::Cancellable::NONE)?;
    let result = (|| -> Result<String> {
        let tree = ostree::MutableTree::from_commit(repo, layer.base_commit)?;
        let db_root = scratch.path().join("root");
        let dbpath = crate::rpmdb::checkout_rpmdb(repo, layer.base_commit, &db_root)?;
        let gone: Vec<&Nevra> = layer
            .removed_base
            .iter()
            .chain(layer.replaced_base.iter().map(|(old, _)| old))
            .collect();
        if !gone.is_empty() {
            remove_base_packages(&tree, &db_root, &dbpath, &gone)?;
        }
        let mut owners: HashMap<String, Nevra> = HashMap::new();
        for package in layer.packages {
            let (root, _) = repo.read_commit(&package.commit, gio::Cancellable::NONE)?;
            merge_tree(&root, &tree, "", &package.nevra, &mut owners)?;
        }
        crate::failpoint::hit("mid-compose");
        // Each package's RPM head: its scripts and file list, and what `rpm --justdb` records.
        let heads = layer
            .packages
            .iter()
            .map(|p| package_cache::head(repo, &p.commit))
            .collect::<Result<Vec<_>>>()?;
        let tree = users_and_scripts(
            repo, layer, &heads, tree, &db_root, &dbpath, timestamp, progress,
        )?;
        write_rpmdb(
            repo,
            layer,
            &heads,
            &tree,
            scratch.path(),
            &db_root,
            &dbpath,
            timestamp,
        )?;

        let root = repo.write_mtree(&tree, gio::Cancellable::NONE)?;
        let root = root
            .downcast::<ostree::RepoFile>()
            .expect("write_mtree returns a RepoFile");
        let record = LayerRecord {
            base_commit: layer.base_commit,
            version: base_info.version(),
            endoflife: base_info.endoflife(),
            requested: layer.requested,
            inactive_requests: layer.inactive_requests,
            packages: layer.packages.iter().map(|p| &p.nevra).collect(),
            state_digest: layer.state_digest,
            base_removals: layer.removed_base,
            base_replacements: layer.replaced_base,
            inactive_overrides: layer.inactive_overrides,
        };
        // The commit's time is the base's (or SOURCE_DATE_EPOCH), never the clock: the same base
        // and packages give the same commit on any machine, at any time.
        let commit = repo.write_commit_with_time(
            Some(layer.base_commit),
            Some("pkglayer: layered packages"),
            None,
            Some(&record.to_variant()),
            &root,
            timestamp,
            gio::Cancellable::NONE,
        )?;
        repo.commit_transaction(gio::Cancellable::NONE)?;
        crate::failpoint::hit("after-commit");
        Ok(commit.to_string())
    })();
    if result.is_err() {
        let _ = repo.abort_transaction(gio::Cancellable::NONE);
    }
    result
}

/// Takes the base packages `gone` out of the tree and of the rpm database at `db_root`/`dbpath`
/// (`rpm -e --justdb`): their files go, but for directories and paths another package of the
/// base still owns (a layered package's files are merged afterwards).
fn remove_base_packages(
    tree: &ostree::MutableTree,
    db_root: &Path,
    dbpath: &str,
    gone: &[&Nevra],
) -> Result<()> {
    let nevras: Vec<String> = gone.iter().map(|n| n.to_string()).collect();
    let listing = crate::rpm::tools::rpm_in_root(db_root, dbpath)
        .args(["-q", "--qf", "[%{FILEMODES}\t%{FILENAMES}\n]"])
        .args(&nevras)
        .run_capture()
        .context("Listing the files of the base packages to remove")?;
    // Whatever asked for it (an origin rpm-ostree wrote, too): a kernel and its initramfs must
    // agree, and pkglayer does not regenerate the initramfs.
    if let Some(path) = listing
        .lines()
        .filter_map(|line| line.split_once('\t').map(|(_, path)| path))
        .find(|path| path.starts_with(crate::overrides::KERNEL_DIR))
    {
        let names: Vec<&str> = gone.iter().map(|n| n.name.as_str()).collect();
        return Err(UserError::new(format!(
            "removing or replacing base packages {} would change the kernel or its modules ({path}), \
             and the initramfs must match the kernel",
            names.join(", ")
        ))
        .hint("pkglayer does not regenerate the initramfs; `pkglayer override reset` the kernel packages")
        .into());
    }
    crate::rpm::tools::rpm_in_root(db_root, dbpath)
        .args(["-e", "--justdb", "--nodeps", "--noscripts", "--notriggers"])
        .args(&nevras)
        .run_capture()
        .context("Removing base packages from the rpm database")?;
    let still_owned: BTreeSet<String> = scripts::triggers::installed_owners(db_root, dbpath)?
        .into_iter()
        .map(|(path, _)| path)
        .collect();
    for line in listing.lines() {
        let Some((mode, path)) = line.split_once('\t') else {
            continue;
        };
        let is_dir = mode
            .parse::<u32>()
            .is_ok_and(|m| m & libc::S_IFMT == libc::S_IFDIR);
        if is_dir || still_owned.contains(path) {
            continue;
        }
        let Some(crate::rpm::placement::Placement::Tree(relative)) =
            crate::rpm::placement::place(path)
        else {
            continue;
        };
        let (parent, name) = crate::tree::split_parent(&relative);
        if let Some(dir) = crate::tree::mtree_dir(tree, parent)? {
            dir.remove(name, true)
                .with_context(|| format!("Removing {path} of a removed base package"))?;
        }
    }
    Ok(())
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

/// Creates the accounts of `sysusers.d` files, runs the scripts and file triggers, and gives package
/// files their owners' IDs; returns the tree to go on with. `db_root`/`dbpath` hold the base's rpmdb;
/// `timestamp` is the layer's time, the scripts' `SOURCE_DATE_EPOCH`.
#[allow(clippy::too_many_arguments)]
fn users_and_scripts(
    repo: &ostree::Repo,
    layer: &Layer,
    heads: &[Vec<u8>],
    tree: ostree::MutableTree,
    db_root: &Path,
    dbpath: &str,
    timestamp: u64,
    progress: &dyn Progress,
) -> Result<ostree::MutableTree> {
    let layered = heads
        .iter()
        .map(|head| LayeredPackage::from_head(head))
        .collect::<Result<Vec<_>>>()?;

    let mut allocations = users::Allocations::load(layer.id_allocations)?;
    let fragments = users::sysusers_fragments(repo, &tree, layered.iter().flat_map(|p| &p.files))?;
    users::apply_sysusers(repo, &tree, &fragments, &mut allocations)?;
    let accounts = users::Accounts::read(repo, &tree)?;

    let base_triggers = scripts::triggers::installed_triggers(db_root, dbpath)?;
    // A layered package's own file triggers also see the base's files, as in rpm.
    let base_files = if layered.iter().any(|p| !p.triggers.is_empty()) {
        scripts::triggers::installed_files(db_root, dbpath)?
    } else {
        Vec::new()
    };
    let planned = scripts::plan_scripts(&layered, &base_triggers, &base_files, layer.skip_scripts);
    let tree = if planned.is_empty() {
        tree
    } else {
        let support = users::sandbox_support(&accounts, &allocations);
        let etc_accounts = accounts.open_for_scripts(repo, &tree)?;
        // Who owns what, read only if a script deletes something.
        let owners = || -> Result<Vec<(String, String)>> {
            let mut owners = scripts::triggers::installed_owners(db_root, dbpath)?;
            for package in &layered {
                let nevra = package.nevra.to_string();
                owners.extend(package.files.iter().map(|f| (f.clone(), nevra.clone())));
            }
            Ok(owners)
        };
        let tree = scripts::run(
            repo,
            &tree,
            &planned,
            &support,
            dbpath,
            &owners,
            layer.checkouts,
            timestamp,
            progress,
        )?;
        if let Some(etc_accounts) = etc_accounts {
            etc_accounts.settle(repo, &tree)?;
        }
        tree
    };

    let final_accounts = users::Accounts::read(repo, &tree)?;
    users::record_created(&final_accounts, &accounts, &mut allocations);
    apply_owners(repo, layer, &tree, &final_accounts)?;
    allocations.save()?;
    Ok(tree)
}

/// Gives files and directories not owned by root their IDs from the final accounts of the tree.
fn apply_owners(
    repo: &ostree::Repo,
    layer: &Layer,
    tree: &ostree::MutableTree,
    accounts: &users::Accounts,
) -> Result<()> {
    for package in layer.packages {
        for owner in CachedPackageInfo::load(repo, &package.commit)?.owners() {
            let (path, user, group) = (owner.path, owner.user, owner.group);
            let missing = |kind: &str, name: &str| -> anyhow::Error {
                UserError::new(format!(
                    "package {} ships /{path} owned by {kind} {name}, which neither the base nor \
                     any layered package creates",
                    package.nevra
                ))
                .hint("the package needs a sysusers.d file or a %pre script creating it; report it to its packager")
                .into()
            };
            let uid = accounts
                .id(Kind::User, &user)
                .ok_or_else(|| missing("user", &user))?;
            let gid = accounts
                .id(Kind::Group, &group)
                .ok_or_else(|| missing("group", &group))?;
            set_owner(repo, tree, &path, uid, gid)
                .with_context(|| format!("Setting the owner of /{path}"))?;
        }
    }
    Ok(())
}

/// Rewrites the object at `path` of the tree with owner `uid`:`gid` (regular files, symlinks and
/// directories).
fn set_owner(
    repo: &ostree::Repo,
    tree: &ostree::MutableTree,
    path: &str,
    uid: u32,
    gid: u32,
) -> Result<()> {
    let (parent, name) = crate::tree::split_parent(path);
    let dir =
        crate::tree::mtree_dir(tree, parent)?.context("its directory is gone from the tree")?;
    match crate::tree::mtree_lookup(&dir, name)? {
        (Some(checksum), None) => {
            let (info, xattrs) = repo.query_file(&checksum, gio::Cancellable::NONE)?;
            if (
                info.attribute_uint32("unix::uid"),
                info.attribute_uint32("unix::gid"),
            ) == (uid, gid)
            {
                return Ok(());
            }
            let checksum = if info.file_type() == gio::FileType::SymbolicLink {
                let target = info.symlink_target().unwrap_or_default();
                repo.write_symlink(
                    None,
                    uid,
                    gid,
                    Some(&xattrs),
                    target.to_str().unwrap_or_default(),
                    gio::Cancellable::NONE,
                )?
                .to_string()
            } else {
                let object = FileObject {
                    uid,
                    gid,
                    mode: info.attribute_uint32("unix::mode"),
                    xattrs: Some(xattrs),
                };
                crate::tree::copy_file_object(repo, &checksum, &object)?
            };
            dir.replace_file(name, &checksum)?;
        }
        (None, Some(subdir)) => {
            let meta =
                repo.load_variant(ostree::ObjectType::DirMeta, &subdir.metadata_checksum())?;
            // (uid, gid, mode, xattrs), numbers big-endian.
            let mode = u32::from_be(meta.child_value(2).get::<u32>().unwrap_or(0o40755));
            subdir.set_metadata_checksum(&crate::tree::write_dirmeta(
                repo,
                uid,
                gid,
                mode & 0o7777,
            )?);
        }
        // Replaced or removed by a script: nothing of the package's is left to own.
        _ => {}
    }
    Ok(())
}

/// The time a layered commit and its rpmdb record: `SOURCE_DATE_EPOCH` when set, else the base
/// commit's timestamp. A malformed `SOURCE_DATE_EPOCH` is an error, not silently the clock.
fn layer_timestamp(base: &CommitInfo) -> Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(value) if !value.trim().is_empty() => value.trim().parse::<u64>().map_err(|_| {
            crate::error::UserError::new(format!(
                "SOURCE_DATE_EPOCH={value} is not a number of seconds since 1970"
            ))
            .hint("set it to an integer such as 1700000000, or unset it to use the base commit's time")
            .into()
        }),
        _ => Ok(base.timestamp()),
    }
}

/// Adds the packages' headers to a copy of the base rpmdb with the real rpm, then puts the database
/// files into the tree (in `journal_mode=DELETE`, without `-wal`/`-shm`, since the tree is read-only).
/// rpm (4.18 and later) takes `SOURCE_DATE_EPOCH` as the transaction ID and the first install time,
/// one second more for each following package: with the packages in plan order (sorted), the
/// database is the same wherever and whenever it is written.
#[allow(clippy::too_many_arguments)]
fn write_rpmdb(
    repo: &ostree::Repo,
    layer: &Layer,
    heads: &[Vec<u8>],
    tree: &ostree::MutableTree,
    scratch: &Path,
    root: &Path,
    dbpath: &str,
    timestamp: u64,
) -> Result<()> {
    let heads_dir = scratch.join("heads");
    std::fs::create_dir_all(&heads_dir)?;
    let mut files = Vec::new();
    for (package, head) in layer.packages.iter().zip(heads) {
        let path = heads_dir.join(format!("{}.rpm", package.nevra));
        std::fs::write(&path, head)?;
        files.push(path);
    }
    if !files.is_empty() {
        crate::rpm::tools::rpm_in_root(root, dbpath)
            .args(["-i", "--justdb", "--nodeps", "--noscripts", "--notriggers"])
            .args([
                "--nodigest",
                "--nosignature",
                "--ignorearch",
                "--ignoreos",
                "--ignoresize",
            ])
            .args(&files)
            .env("SOURCE_DATE_EPOCH", timestamp.to_string())
            .run_capture()
            .context("Adding the layered packages to the rpm database")?;
    }
    let dbdir = root.join(dbpath);
    crate::rpmdb::finalize(&dbdir)?;

    let dir_tree = crate::tree::mtree_dir(tree, dbpath)?
        .with_context(|| format!("{dbpath} is not a directory in the base tree"))?;
    for entry in std::fs::read_dir(&dbdir)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let object = FileObject {
            uid: 0,
            gid: 0,
            mode: libc::S_IFREG | 0o644,
            xattrs: None,
        };
        let checksum = crate::tree::write_file_object_from(repo, &object, &entry.path())?;
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
