//! The sandbox scripts run in, and how their effects come back into the tree.
//!
//! The tree (base + layered files) is the read-only *lower* layers of an overlay mount ([`Lower`]):
//! a hardlink checkout, in the repo's `tmp/`, of what the tree has beyond a deployment's directory,
//! stacked on that directory, so the sandbox costs no copies and no checkout of the base. A script
//! writing to a file, even in place, writes to a copy in the *upper* directory, so no repo object can
//! change through a hardlink. bubblewrap then runs one driver script over the overlay as `/`, with
//! `/etc` bound to `/usr/etc`, `/var` read-only and empty, fresh `/tmp` and `/run`, and no network
//! (its own empty network namespace). The overlay is mounted in a private mount namespace
//! (`unshare`), so it vanishes with the process, however it ends.
//!
//! Afterwards the upper directory holds exactly what the scripts changed: new and modified files,
//! whiteouts for deleted ones. [`apply_changes`] writes those under `usr/` into the mutable tree;
//! nothing else of the tree is scanned.

use std::fmt::Write as _;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use ostree::gio;

use super::Script;
use super::lower::{Lower, overlay_path};
use crate::error::UserError;

/// Where the driver, the scripts and support files appear inside the sandbox.
const INPUT: &str = "/run/pkglayer/in";
/// Where script output and exit statuses are written inside the sandbox.
const OUTPUT: &str = "/run/pkglayer/out";
/// rpm's own Lua interpreter, run from the tree for `<lua>` scripts.
const RPMLUA: &str = "/usr/bin/rpmlua";
/// How many lines of a failed script's output the error shows.
const OUTPUT_TAIL: usize = 15;

/// An executable the sandbox puts in `PATH` ahead of the tree's own (e.g. `useradd`).
#[derive(Debug, Clone)]
pub struct SupportFile {
    /// Path under the input directory, e.g. `bin/useradd`.
    pub path: String,
    pub contents: String,
}

/// A finished sandbox: the changes the scripts made, until dropped.
pub struct Effects {
    scratch: crate::scratch::Scratch,
    /// Output of each script that printed something: (index into the scripts, text).
    pub outputs: Vec<(usize, String)>,
}

impl Effects {
    /// The overlay's upper directory.
    pub fn upper(&self) -> PathBuf {
        self.scratch.path().join("upper")
    }
}

/// Runs `scripts` in order on `tree`, whose layers `lower` holds, stopping at the first failure.
pub fn run(
    repo: &ostree::Repo,
    tree: &ostree::MutableTree,
    lower: &Lower,
    scripts: &[Script],
    support: &[SupportFile],
) -> Result<Effects> {
    for script in scripts.iter().filter(|s| s.is_lua()) {
        if !tree_has(tree, &RPMLUA[1..])? {
            return Err(UserError::new(format!(
                "the {} scriptlet of {} is written in Lua, and the image has no {RPMLUA} to run it",
                script.slot, script.package
            ))
            .hint(format!(
                "layer the package without its scripts (--skip-scripts={})",
                package_name(&script.package)
            ))
            .into());
        }
    }
    let scratch = crate::scratch::create(repo, "scripts")?;
    let dir = |name: &str| -> Result<PathBuf> {
        let path = scratch.path().join(name);
        std::fs::create_dir_all(&path).with_context(|| format!("Creating {}", path.display()))?;
        Ok(path)
    };
    let (upper, work, merged, input, output, var) = (
        dir("upper")?,
        dir("work")?,
        dir("merged")?,
        dir("in")?,
        dir("out")?,
        dir("var")?,
    );
    let lowerdir = lower.check_out(repo, scratch.path())?;
    write_inputs(&input, scripts, support)?;

    let overlay = format!(
        "lowerdir={lowerdir},upperdir={},workdir={}",
        overlay_path(&upper)?,
        overlay_path(&work)?
    );
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
        .arg(r#"mount -t overlay pkglayer-scripts -o "$1" "$2" && shift 2 && exec "$@""#)
        .arg("pkglayer-scripts")
        .arg(&overlay)
        .arg(&merged)
        .arg("bwrap")
        .arg("--bind")
        .arg(&merged)
        .arg("/");
    if crate::tree::mtree_dir(tree, "usr/etc")?.is_some() {
        command
            .arg("--bind")
            .arg(merged.join("usr/etc"))
            .arg("/etc");
    }
    command
        .arg("--ro-bind")
        .arg(&var)
        .arg("/var")
        .args([
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/run",
        ])
        .arg("--ro-bind")
        .arg(&input)
        .arg(INPUT)
        .arg("--bind")
        .arg(&output)
        .arg(OUTPUT)
        .args([
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--die-with-parent",
            "--new-session",
            "--clearenv",
            "--setenv",
            "PATH",
        ])
        .arg(format!("{INPUT}/bin:/usr/sbin:/usr/bin:/sbin:/bin"))
        .args(["--setenv", "HOME", "/root", "--setenv", "LANG", "C.UTF-8"])
        .args(["--setenv", "TMPDIR", "/tmp", "--chdir", "/", "/bin/sh"])
        .arg(format!("{INPUT}/run"));
    let result = command
        .output()
        .context("Starting the script sandbox (unshare, bwrap)")?;

    let mut outputs = Vec::new();
    for (index, script) in scripts.iter().enumerate() {
        let status = std::fs::read_to_string(output.join(format!("{index}.status")));
        let log = std::fs::read_to_string(output.join(format!("{index}.log"))).unwrap_or_default();
        let Ok(status) = status else {
            // The driver did not get this far: the sandbox itself failed.
            bail!(
                "the script sandbox failed before the {} scriptlet of {} ran ({}): {}",
                script.slot,
                script.package,
                result.status,
                String::from_utf8_lossy(&result.stderr).trim()
            );
        };
        let code: i32 = status.trim().parse().unwrap_or(-1);
        if code != 0 {
            return Err(script_failed(script, code, &log));
        }
        if !log.trim().is_empty() {
            outputs.push((index, log));
        }
    }
    Ok(Effects { scratch, outputs })
}

/// Whether the tree has anything at `path`.
fn tree_has(tree: &ostree::MutableTree, path: &str) -> Result<bool> {
    let (parent, name) = crate::tree::split_parent(path);
    Ok(match crate::tree::mtree_dir(tree, parent)? {
        Some(dir) => crate::tree::mtree_lookup(&dir, name)? != (None, None),
        None => false,
    })
}

/// The package name of a NEVRA, for hints.
fn package_name(nevra: &str) -> &str {
    crate::rpm::Nevra::parse(nevra)
        .map(|n| &nevra[..n.name.len()])
        .unwrap_or(nevra)
}

fn script_failed(script: &Script, code: i32, log: &str) -> anyhow::Error {
    let lines: Vec<&str> = log.lines().collect();
    let tail = &lines[lines.len().saturating_sub(OUTPUT_TAIL)..];
    let mut message = format!(
        "the {} scriptlet of {} failed with exit status {code}",
        script.slot, script.package
    );
    if tail.is_empty() {
        message.push_str(" and printed nothing");
    } else {
        message.push_str(", its last output:");
        for line in tail {
            let _ = write!(message, "\n  | {line}");
        }
    }
    UserError::new(message)
        .hint(format!(
            "nothing was deployed; to layer it without this package's scripts, add --skip-scripts={}",
            package_name(&script.package)
        ))
        .into()
}

/// Writes the driver (`run`), one file per script body, its stdin, and the support files.
fn write_inputs(input: &Path, scripts: &[Script], support: &[SupportFile]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut driver = String::from(
        "# Written by pkglayer: runs each script, records its output and exit status.\n\
         step() {\n\
         \x20   number=$1; shift\n\
         \x20   \"$@\" <\"$IN/$number.stdin\" >\"$OUT/$number.log\" 2>&1\n\
         \x20   status=$?\n\
         \x20   echo \"$status\" >\"$OUT/$number.status\"\n\
         \x20   return \"$status\"\n\
         }\n",
    );
    let _ = writeln!(driver, "IN={INPUT}\nOUT={OUTPUT}");
    for (index, script) in scripts.iter().enumerate() {
        let body = input.join(format!("{index}.script"));
        std::fs::write(&body, &script.body)?;
        let stdin: String = script.stdin.iter().map(|p| format!("{p}\n")).collect();
        std::fs::write(input.join(format!("{index}.stdin")), stdin)?;

        let mut words: Vec<String> = Vec::new();
        if script.is_lua() {
            words.push(RPMLUA.to_string());
            words.push(format!("{INPUT}/{index}.script"));
        } else {
            words.extend(script.interpreter.iter().cloned());
            // `%post -p /sbin/ldconfig` has no body: the program runs with the arguments alone.
            if !script.body.is_empty() {
                words.push(format!("{INPUT}/{index}.script"));
            }
        }
        words.extend(script.args.iter().cloned());
        let quoted: Vec<String> = words.iter().map(|w| shell_quote(w)).collect();
        let _ = writeln!(
            driver,
            "# {} of {}\nstep {index} {} || exit 0",
            script.slot,
            script.package,
            quoted.join(" ")
        );
    }
    std::fs::write(input.join("run"), driver)?;
    for file in support {
        let path = input.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, &file.contents)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// Writes what the scripts changed under `usr/` (the overlay's upper directory) into `usr`, the
/// tree's `usr` directory. Paths (relative to the tree's root) for which `ignore` is true are left
/// alone. Returns the changed paths.
pub fn apply_changes(
    repo: &ostree::Repo,
    upper: &Path,
    usr: &ostree::MutableTree,
    ignore: &dyn Fn(&str) -> bool,
) -> Result<Vec<String>> {
    let mut changed = Vec::new();
    let upper_usr = upper.join("usr");
    if upper_usr.is_dir() {
        apply_dir(repo, &upper_usr, usr, "usr", ignore, &mut changed)?;
    }
    Ok(changed)
}

fn apply_dir(
    repo: &ostree::Repo,
    dir: &Path,
    tree: &ostree::MutableTree,
    relative: &str,
    ignore: &dyn Fn(&str) -> bool,
    changed: &mut Vec<String>,
) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let child = format!("{relative}/{name}");
        if ignore(&child) {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path)?;
        let kind = meta.file_type();
        if kind.is_char_device() && meta.rdev() == 0 {
            // An overlay whiteout: the script deleted it.
            tree.remove(&name, true)?;
            changed.push(child);
        } else if kind.is_dir() {
            let existing = crate::tree::mtree_lookup(tree, &name)?;
            let subtree = match existing {
                (_, Some(existing)) if !is_opaque(&path) => existing,
                (None, None) => new_dir(repo, tree, &name, &meta)?,
                // Replaced (a file became a directory, or a directory was deleted and made again).
                _ => {
                    tree.remove(&name, false)?;
                    new_dir(repo, tree, &name, &meta)?
                }
            };
            apply_dir(repo, &path, &subtree, &child, ignore, changed)?;
        } else if kind.is_file() {
            let object = crate::tree::FileObject {
                uid: meta.uid(),
                gid: meta.gid(),
                mode: meta.mode(),
                xattrs: None,
            };
            let checksum = crate::tree::write_file_object_from(repo, &object, &path)?;
            replace(tree, &name, &checksum)?;
            changed.push(child);
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&path)?;
            let checksum = repo.write_symlink(
                None,
                meta.uid(),
                meta.gid(),
                None,
                &target.to_string_lossy(),
                gio::Cancellable::NONE,
            )?;
            replace(tree, &name, &checksum)?;
            changed.push(child);
        } else {
            tracing::warn!("a script created /{child}, which an OSTree tree cannot hold; left out");
        }
    }
    Ok(())
}

/// Puts a file at `name`, replacing a directory there if need be.
fn replace(tree: &ostree::MutableTree, name: &str, checksum: &str) -> Result<()> {
    if crate::tree::mtree_lookup(tree, name)?.1.is_some() {
        tree.remove(name, false)?;
    }
    tree.replace_file(name, checksum)?;
    Ok(())
}

fn new_dir(
    repo: &ostree::Repo,
    tree: &ostree::MutableTree,
    name: &str,
    meta: &std::fs::Metadata,
) -> Result<ostree::MutableTree> {
    let dir = tree.ensure_dir(name)?;
    dir.set_metadata_checksum(&crate::tree::write_dirmeta(
        repo,
        meta.uid(),
        meta.gid(),
        meta.mode() & 0o7777,
    )?);
    Ok(dir)
}

/// Whether overlayfs marked the directory opaque: it hides the lower directory of the same name.
fn is_opaque(path: &Path) -> bool {
    let mut value = [0u8; 4];
    matches!(
        rustix::fs::lgetxattr(path, "trusted.overlay.opaque", &mut value),
        Ok(1) if value[0] == b'y'
    )
}
