//! Reading a tree's rpm database straight from an OSTree commit.
//!
//! The database files are copied out of the commit into a scratch directory and queried there with the
//! real `rpm`, so a deployment never needs to be checked out (or writable) to be read, and any commit in
//! the repo can be inspected.

use std::path::Path;

use anyhow::{Context, Result, bail};
use fn_error_context::context;
use ostree::gio;
use ostree::gio::prelude::*;

use crate::command::CommandExt;
use crate::rpm::Nevra;

/// Where trees keep their rpm database, relative to the root, in the order we look.
/// Fedora links `usr/share/rpm` to `../lib/sysimage/rpm`; older trees have the real directory there.
const DBPATHS: [&str; 2] = ["usr/share/rpm", "usr/lib/sysimage/rpm"];

/// Query format: one package a line, tab-separated, epoch as a number.
const QUERYFORMAT: &str = "%{NAME}\\t%{EPOCHNUM}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\n";

/// The packages in the rpm database of `commit`, sorted by NEVRA.
#[context("Reading the rpm database of commit {commit}")]
pub fn packages_in_commit(repo: &ostree::Repo, commit: &str) -> Result<Vec<Nevra>> {
    // System tmp, not the repo's: read-only commands must work without write access to the sysroot.
    let scratch = tempfile::tempdir().context("Creating a scratch directory")?;
    let dbpath = checkout_rpmdb(repo, commit, scratch.path())?;
    query_packages(&scratch.path().join(dbpath))
}

/// The rpm database directory of the tree of `commit` (relative to its root), following a link at
/// `usr/share/rpm`.
fn dbpath_in_tree(root: &gio::File, commit: &str) -> Result<String> {
    for candidate in DBPATHS {
        let file = root.resolve_relative_path(candidate);
        let Ok(info) = file.query_info(
            "standard::type,standard::symlink-target",
            gio::FileQueryInfoFlags::NOFOLLOW_SYMLINKS,
            gio::Cancellable::NONE,
        ) else {
            continue;
        };
        match info.file_type() {
            gio::FileType::Directory => return Ok(candidate.to_string()),
            gio::FileType::SymbolicLink => {
                let target = info.symlink_target().unwrap_or_default();
                let parent = Path::new(candidate).parent().unwrap_or(Path::new(""));
                let resolved = normalize(&parent.join(target));
                let file = root.resolve_relative_path(&resolved);
                if file.query_file_type(gio::FileQueryInfoFlags::NONE, gio::Cancellable::NONE)
                    == gio::FileType::Directory
                {
                    return Ok(resolved);
                }
            }
            _ => {}
        }
    }
    bail!(
        "commit {commit} has no rpm database (looked in {})",
        DBPATHS.join(" and ")
    )
}

/// Copies the rpm database of `commit` under `root`, at the same dbpath as in the tree, so tools that
/// take a root directory (libsolv, `rpm --root`) can read it. Returns the dbpath.
#[context("Copying the rpm database of commit {commit}")]
pub fn checkout_rpmdb(repo: &ostree::Repo, commit: &str, root: &Path) -> Result<String> {
    let (tree, _) = repo.read_commit(commit, gio::Cancellable::NONE)?;
    let dbpath = dbpath_in_tree(&tree, commit)?;
    let dest = root.join(&dbpath);
    let dir = tree.resolve_relative_path(&dbpath);
    std::fs::create_dir_all(&dest).with_context(|| format!("Creating {}", dest.display()))?;
    for (name, file_type) in crate::tree::children(&dir)? {
        if file_type == gio::FileType::Regular {
            crate::tree::copy_file_out(repo, &dir.child(&name), &dest.join(&name))
                .with_context(|| format!("Copying {dbpath}/{name}"))?;
        }
    }
    Ok(dbpath)
}

/// Leaves the database in `dbdir` readable from a read-only tree: rpm writes sqlite in WAL mode, which
/// needs `-wal`/`-shm` files beside it; switch it to `journal_mode=DELETE` and drop the leftovers.
#[context("Finalizing the rpm database in {}", dbdir.display())]
pub fn finalize(dbdir: &Path) -> Result<()> {
    let db = dbdir.join("rpmdb.sqlite");
    if db.exists() {
        let connection = rusqlite::Connection::open(&db)?;
        let mode: String =
            connection.query_row("PRAGMA journal_mode=DELETE", [], |row| row.get(0))?;
        if mode != "delete" {
            bail!("{} stayed in journal_mode={mode}", db.display());
        }
        connection.close().map_err(|(_, err)| err)?;
    }
    for leftover in ["rpmdb.sqlite-wal", "rpmdb.sqlite-shm", ".rpm.lock"] {
        let path = dbdir.join(leftover);
        if path.exists() {
            std::fs::remove_file(&path).with_context(|| format!("Removing {}", path.display()))?;
        }
    }
    Ok(())
}

/// Lists the packages of the database in `dbdir` with the real `rpm`.
fn query_packages(dbdir: &Path) -> Result<Vec<Nevra>> {
    let output = crate::rpm::tools::rpm_on_database(dbdir)
        .args(["-qa", "--qf", QUERYFORMAT])
        .run_capture()?;
    let mut packages = output
        .lines()
        .filter(|line| !line.is_empty())
        .map(parse_query_line)
        .filter(|nevra| !matches!(nevra, Ok(n) if n.name == "gpg-pubkey"))
        .collect::<Result<Vec<_>>>()?;
    packages.sort();
    Ok(packages)
}

fn parse_query_line(line: &str) -> Result<Nevra> {
    let fields: Vec<&str> = line.split('\t').collect();
    let [name, epoch, version, release, arch] = fields[..] else {
        bail!("unexpected line from rpm: {line:?}");
    };
    Ok(Nevra {
        name: name.to_string(),
        epoch: epoch
            .parse()
            .with_context(|| format!("epoch in {line:?}"))?,
        version: version.to_string(),
        release: release.to_string(),
        arch: arch.to_string(),
    })
}

/// The package changes between two package sets.
#[derive(Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PackageDiff {
    /// NEVRAs only in the second set.
    pub added: Vec<String>,
    /// NEVRAs only in the first set.
    pub removed: Vec<String>,
    /// Names in both sets with another epoch, version, release or arch.
    pub changed: Vec<PackageChange>,
}

/// A package name whose version or arch differs between two sets.
#[derive(Debug, PartialEq, Eq, serde::Serialize)]
pub struct PackageChange {
    /// The package name.
    pub name: String,
    /// `evr.arch` before.
    pub from: String,
    /// `evr.arch` after.
    pub to: String,
}

/// Compares two package lists by name (a name installed in several versions compares as a set).
pub fn diff(from: &[Nevra], to: &[Nevra]) -> PackageDiff {
    use std::collections::BTreeMap;
    let by_name = |list: &[Nevra]| {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for nevra in list {
            map.entry(nevra.name.clone()).or_default().push(format!(
                "{}.{}",
                nevra.evr(),
                nevra.arch
            ));
        }
        map
    };
    let (before, after) = (by_name(from), by_name(to));
    let mut result = PackageDiff::default();
    for (name, old) in &before {
        match after.get(name) {
            None => result
                .removed
                .extend(old.iter().map(|v| format!("{name}-{v}"))),
            Some(new) if new != old => result.changed.push(PackageChange {
                name: name.clone(),
                from: old.join(" "),
                to: new.join(" "),
            }),
            Some(_) => {}
        }
    }
    for (name, new) in &after {
        if !before.contains_key(name) {
            result
                .added
                .extend(new.iter().map(|v| format!("{name}-{v}")));
        }
    }
    result
}

/// Resolves `.` and `..` in a relative path without touching the filesystem.
fn normalize(path: &Path) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.iter().filter_map(|p| p.to_str()) {
        match part {
            "." | "" | "/" => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_link_targets() {
        let cases = [
            ("usr/share/../lib/sysimage/rpm", "usr/lib/sysimage/rpm"),
            ("usr/share/./rpm", "usr/share/rpm"),
            ("/usr/lib/sysimage/rpm", "usr/lib/sysimage/rpm"),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize(Path::new(input)), expected);
        }
    }

    #[test]
    fn diffs_package_sets() {
        let list = |items: &[&str]| -> Vec<Nevra> {
            items.iter().map(|s| Nevra::parse(s).unwrap()).collect()
        };
        let diff = diff(
            &list(&["bash-5.2-1.x86_64", "kernel-6.1-1.x86_64", "old-1-1.noarch"]),
            &list(&[
                "bash-5.2-1.x86_64",
                "kernel-6.2-1.x86_64",
                "strace-6.1-1.x86_64",
            ]),
        );
        assert_eq!(diff.added, ["strace-6.1-1.x86_64"]);
        assert_eq!(diff.removed, ["old-1-1.noarch"]);
        assert_eq!(
            diff.changed,
            [PackageChange {
                name: "kernel".into(),
                from: "6.1-1.x86_64".into(),
                to: "6.2-1.x86_64".into()
            }]
        );
    }

    #[test]
    fn parses_query_lines() {
        let nevra = parse_query_line("bash\t1\t5.2\t3.fc40\tx86_64").unwrap();
        assert_eq!(nevra.to_string(), "bash-1:5.2-3.fc40.x86_64");
        let err = parse_query_line("bash 5.2").unwrap_err();
        assert!(err.to_string().contains("unexpected line from rpm"));
    }
}
