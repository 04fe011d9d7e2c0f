//! The sandbox scripts run in, and how their effects come back into the tree.
//!
//! The tree (base + layered files) is the read-only *lower* layers of an overlay mount ([`Lower`]):
//! a hardlink checkout, in the repo's `tmp/`, of what the tree has beyond a deployment's directory,
//! stacked on that directory, so the sandbox costs no copies and no checkout of the base. A script
//! writing to a file, even in place, writes to a copy in the *upper* directory, so no repo object can
//! change through a hardlink.
//!
//! Everything scripts can write lives on one size-limited tmpfs (the *space*): the overlay's upper
//! directory, a throwaway `/var` (with `/var/lib/rpm-state` and `/var/tmp`), `/tmp`, `/run` and the
//! scripts' output. It and the overlay are mounted in a private mount namespace (`unshare`), held
//! by a small shell (the *holder*) until pkglayer has read the results through
//! `/proc/<holder>/root`; they vanish with it, however pkglayer ends (the holder exits when its
//! stdin ends). bubblewrap then runs one driver script over the overlay as `/`, with `/etc` bound
//! to `/usr/etc`, no network, new PID/IPC/UTS namespaces, a minimal `/dev`, the capabilities of
//! [`KEPT_CAPABILITIES`] alone, no new privileges and the seccomp filter of `seccomp`.
//!
//! The driver reports the end of each script (`done INDEX STATUS [PID:NAME…]`, the processes the
//! script left running) on its stdout and waits for pkglayer's word to go on; pkglayer checks the
//! script's time, the space left, what it left running and what it deleted, and stops the whole
//! sandbox (killing bubblewrap kills its PID namespace) at the first fault.
//!
//! Afterwards the upper directory holds exactly what the scripts changed: new and modified files,
//! whiteouts for deleted ones. [`apply_changes`] writes those under `usr/` into the mutable tree;
//! nothing else of the tree is scanned.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ostree::gio;

use super::Script;
use super::lower::{Lower, overlay_path};
use crate::error::UserError;
use changes::{Owned, deletions};
use holder::{HOLDER, Holder, Report};

mod changes;
mod holder;

pub use changes::apply_changes;

/// Where the driver, the scripts and support files appear inside the sandbox.
const INPUT: &str = "/run/pkglayer/in";
/// Where script output is written inside the sandbox.
const OUTPUT: &str = "/run/pkglayer/out";
/// rpm's own Lua interpreter, run from the tree for `<lua>` scripts.
const RPMLUA: &str = "/usr/bin/rpmlua";
/// The tree's rpm, which expands the macros of `-e` scripts.
const RPM: &str = "/usr/bin/rpm";
/// How many lines of a failed script's output the error shows.
const OUTPUT_TAIL: usize = 15;

/// How long one script may run, in seconds, unless [`TIMEOUT_VAR`] says otherwise. rpm has no
/// limit; ten minutes is far beyond what install scripts take (an initramfs or a locale archive
/// takes a minute or two on a slow machine) and still ends a hung one.
const DEFAULT_TIMEOUT_SECS: u64 = 600;
const TIMEOUT_VAR: &str = "PKGLAYER_SCRIPT_TIMEOUT";
/// How much the scripts of a transaction may write in all, in MiB, unless [`SPACE_VAR`] says
/// otherwise: new and changed files, `/var`, `/tmp`, `/run`, their output.
const DEFAULT_SPACE_MIB: u64 = 1024;
const SPACE_VAR: &str = "PKGLAYER_SCRIPT_SPACE";
/// Less room than this left in the space after a script, and it is taken to have filled it.
const FULL_MARGIN: u64 = 1024 * 1024;

/// The capabilities scripts keep (bubblewrap drops the others): those of files and their owners
/// (`chown`, `chmod` of others' files, writing whatever the mode, set-ID bits, file capabilities
/// with `setcap`), changing user and group (`runuser`, `su`, `setpriv` to run as an account),
/// signalling their own processes, `chroot`, and dropping capabilities further. The same set as
/// rpm-ostree's: Docker's defaults without raw sockets, device nodes, audit writes and privileged
/// ports.
pub(crate) const KEPT_CAPABILITIES: &[&str] = &[
    "cap_chown",
    "cap_dac_override",
    "cap_fowner",
    "cap_fsetid",
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
    "cap_setpcap",
    "cap_sys_chroot",
    "cap_setfcap",
];

/// The parts of `/proc` that act on the machine rather than on the sandbox's processes: kernel
/// settings (those a capability does not guard are writable by root), the SysRq trigger (reboot,
/// crash), interrupt and bus settings.
const PROC_READ_ONLY: &[&str] = &[
    "/proc/sys",
    "/proc/sysrq-trigger",
    "/proc/irq",
    "/proc/bus",
    "/proc/fs",
];

/// `/var` as scripts find it: a fresh skeleton on the space, never deployed.
const VAR_SKELETON: &[&str] = &[
    "var/cache",
    "var/lib",
    "var/lib/rpm-state",
    "var/log",
    "var/opt",
    "var/spool",
    "var/tmp",
];

/// An executable the sandbox puts in `PATH` ahead of the tree's own (e.g. `useradd`).
#[derive(Debug, Clone)]
pub struct SupportFile {
    /// Path under the input directory, e.g. `bin/useradd`.
    pub path: String,
    pub contents: String,
}

/// A finished sandbox: the changes the scripts made, until dropped.
pub struct Effects {
    /// Holds the space (and so the upper directory) until dropped; before `scratch`.
    holder: Holder,
    _scratch: crate::scratch::Scratch,
    /// Output of each script that printed something: (index into the scripts, text).
    pub outputs: Vec<(usize, String)>,
}

impl Effects {
    /// The overlay's upper directory.
    pub fn upper(&self) -> PathBuf {
        self.holder.space().join("upper")
    }
}

/// The limits scripts run under.
#[derive(Debug, Clone, Copy)]
struct Limits {
    timeout: Duration,
    /// Bytes.
    space: u64,
}

impl Limits {
    fn from_env() -> Result<Self> {
        let read = |var: &str, default: u64, unit: &str| -> Result<u64> {
            match std::env::var(var) {
                Ok(text) => match text.trim().parse::<u64>() {
                    Ok(value) if value > 0 => Ok(value),
                    _ => Err(UserError::new(format!(
                        "{var}={text} is not a positive number of {unit}"
                    ))
                    .into()),
                },
                Err(_) => Ok(default),
            }
        };
        Ok(Limits {
            timeout: Duration::from_secs(read(TIMEOUT_VAR, DEFAULT_TIMEOUT_SECS, "seconds")?),
            space: read(SPACE_VAR, DEFAULT_SPACE_MIB, "MiB")?.saturating_mul(1024 * 1024),
        })
    }
}

/// What scripts may not delete.
pub struct Protected<'a> {
    /// The tree as the scripts find it (written).
    pub root: &'a gio::File,
    /// Paths (relative to the root) scripts may delete whoever owns them.
    pub ignore: &'a dyn Fn(&str) -> bool,
    /// The paths packages own (as rpm names them) with their owners; read when a script deletes.
    pub owners: &'a dyn Fn() -> Result<Vec<(String, String)>>,
}

/// Runs `scripts` in order on `tree`, whose layers `lower` holds, stopping at the first failure
/// and at the first deletion of what `protected` names.
pub fn run(
    repo: &ostree::Repo,
    tree: &ostree::MutableTree,
    lower: &Lower,
    scripts: &[Script],
    support: &[SupportFile],
    source_date_epoch: u64,
    protected: &Protected,
) -> Result<Effects> {
    for script in scripts {
        let (tool, what) = if script.is_lua() {
            (RPMLUA, "is written in Lua")
        } else if script.expand {
            (RPM, "has its macros expanded (-e)")
        } else {
            continue;
        };
        if !tree_has(tree, &tool[1..])? {
            return Err(UserError::new(format!(
                "the {} scriptlet of {} {what}, and the image has no {tool} to do it",
                script.slot, script.package
            ))
            .hint(format!(
                "layer the package without its scripts (--skip-scripts={})",
                package_name(&script.package)
            ))
            .into());
        }
    }
    let limits = Limits::from_env()?;
    let scratch = crate::scratch::create(repo, "scripts")?;
    let dir = |name: &str| -> Result<PathBuf> {
        let path = std::path::absolute(scratch.path().join(name))?;
        std::fs::create_dir_all(&path).with_context(|| format!("Creating {}", path.display()))?;
        Ok(path)
    };
    let (merged, input, space) = (dir("merged")?, dir("in")?, dir("space")?);
    overlay_path(&space)?;
    let lowerdir = lower.check_out(repo, scratch.path())?;
    write_inputs(&input, scripts, support)?;
    let filter = scratch.path().join("seccomp.bpf");
    super::seccomp::write_filter(&filter)?;

    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
        .arg(HOLDER)
        .arg("pkglayer-scripts")
        .arg(std::process::id().to_string())
        .arg(limits.space.to_string())
        .arg(&space)
        .arg(&merged)
        .arg(&lowerdir)
        .arg(&filter)
        .env("VAR_SKELETON", VAR_SKELETON.join(" "))
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
    for (inside, on_space) in [("/var", "var"), ("/tmp", "tmp"), ("/run", "run")] {
        command.arg("--bind").arg(space.join(on_space)).arg(inside);
    }
    command.args(["--proc", "/proc", "--dev", "/dev"]);
    // What of /proc reaches past the sandbox (kernel settings, the SysRq trigger), read-only.
    for path in PROC_READ_ONLY {
        command.args(["--ro-bind-try", path, path]);
    }
    command
        .arg("--ro-bind")
        .arg(&input)
        .arg(INPUT)
        .arg("--bind")
        .arg(space.join("out"))
        .arg(OUTPUT)
        .arg("--ro-bind")
        .arg(input.join("ostree-booted"))
        .arg("/run/ostree-booted")
        .args([
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
        ]);
    for capability in KEPT_CAPABILITIES {
        command.args(["--cap-add", capability]);
    }
    command
        .args(["--seccomp", "9", "--clearenv", "--setenv", "PATH"])
        .arg(format!("{INPUT}/bin:/usr/sbin:/usr/bin:/sbin:/bin"))
        .args(["--setenv", "HOME", "/root", "--setenv", "LANG", "C.UTF-8"])
        .args([
            "--setenv",
            "TMPDIR",
            "/tmp",
            "--setenv",
            "SYSTEMD_OFFLINE",
            "1",
        ])
        .args(["--setenv", "SOURCE_DATE_EPOCH"])
        .arg(source_date_epoch.to_string())
        .args(["--chdir", "/", "/bin/sh"])
        .arg(format!("{INPUT}/run"));
    let mut holder = Holder::start(command, &space)?;

    let mut deleted_before = BTreeSet::new();
    let mut owned: Option<Owned> = None;
    for (index, script) in scripts.iter().enumerate() {
        let deadline = Instant::now() + limits.timeout;
        let report = match holder.next_report(deadline) {
            Report::Done(report) => report,
            Report::TimedOut => {
                holder.stop();
                return Err(UserError::new(format!(
                    "the {} scriptlet of {} was still running after {} s, and was stopped",
                    script.slot,
                    script.package,
                    limits.timeout.as_secs()
                ))
                .hint(format!(
                    "nothing was deployed; a script that needs longer can be given it with \
                     {TIMEOUT_VAR}=SECONDS, or the package layered without its scripts \
                     (--skip-scripts={})",
                    package_name(&script.package)
                ))
                .into());
            }
            Report::Ended(status) => {
                let errors = holder.read_output("../sandbox.err");
                bail!(
                    "the script sandbox failed before the {} scriptlet of {} ended (exit status \
                     {status}): {}{}",
                    script.slot,
                    script.package,
                    holder.stderr().trim(),
                    errors.trim()
                );
            }
        };
        if report.index != index {
            holder.stop();
            bail!(
                "the script sandbox reported script {} while the {} scriptlet of {} ran",
                report.index,
                script.slot,
                script.package
            );
        }
        if holder.space_left()? < FULL_MARGIN {
            holder.stop();
            return Err(UserError::new(format!(
                "the {} scriptlet of {} filled the {} MiB scripts may write",
                script.slot,
                script.package,
                limits.space / (1024 * 1024)
            ))
            .hint(format!(
                "nothing was deployed; scripts that need more room can be given it with \
                 {SPACE_VAR}=MIB, or the package layered without its scripts (--skip-scripts={})",
                package_name(&script.package)
            ))
            .into());
        }
        if !report.left.is_empty() {
            holder.stop();
            return Err(UserError::new(format!(
                "the {} scriptlet of {} left processes running after it ended ({}); they were \
                 stopped",
                script.slot,
                script.package,
                report.left.join(", ")
            ))
            .hint(format!(
                "nothing was deployed; scripts may not start daemons. Layer the package without \
                 its scripts with --skip-scripts={}",
                package_name(&script.package)
            ))
            .into());
        }
        let deleted = deletions(
            &holder.space().join("upper"),
            protected.root,
            protected.ignore,
        )?;
        let new: Vec<&String> = deleted.difference(&deleted_before).collect();
        if !new.is_empty() {
            if owned.is_none() {
                owned = Some(Owned::new((protected.owners)()?));
            }
            let owned_paths = owned.as_ref().expect("just read").of(&new);
            if !owned_paths.is_empty() {
                holder.stop();
                return Err(deleted_error(script, &owned_paths));
            }
        }
        deleted_before = deleted;
        let log = holder.read_output(&format!("{index}.log"));
        match report.status.as_str() {
            "0" => {}
            "expand" => {
                holder.stop();
                return Err(script_failed(
                    script,
                    "could not have its macros expanded by the image's rpm",
                    &log,
                ));
            }
            status => {
                holder.stop();
                let code: i32 = status.parse().unwrap_or(-1);
                return Err(script_failed(
                    script,
                    &format!("failed with exit status {code}"),
                    &log,
                ));
            }
        }
        holder.go_on()?;
    }
    // Whatever is left of the sandbox goes before its results are read.
    holder.stop();

    let mut outputs = Vec::new();
    for index in 0..scripts.len() {
        let log = holder.read_output(&format!("{index}.log"));
        if !log.trim().is_empty() {
            outputs.push((index, log));
        }
    }
    Ok(Effects {
        holder,
        _scratch: scratch,
        outputs,
    })
}

fn deleted_error(script: &Script, paths: &[(String, String)]) -> anyhow::Error {
    const SHOWN: usize = 10;
    let mut message = format!(
        "the {} scriptlet of {} deleted {} path{} that packages own:",
        script.slot,
        script.package,
        paths.len(),
        if paths.len() == 1 { "" } else { "s" }
    );
    for (path, owner) in paths.iter().take(SHOWN) {
        let _ = write!(message, "\n  {path} ({owner})");
    }
    if paths.len() > SHOWN {
        let _ = write!(message, "\n  … and {} more", paths.len() - SHOWN);
    }
    UserError::new(message)
        .hint(format!(
            "nothing was deployed; scripts may add and change files, and delete what no package \
             owns, never the files of the base or of packages. To layer it without its scripts, \
             add --skip-scripts={}",
            package_name(&script.package)
        ))
        .into()
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

fn script_failed(script: &Script, what: &str, log: &str) -> anyhow::Error {
    let lines: Vec<&str> = log.lines().collect();
    let tail = &lines[lines.len().saturating_sub(OUTPUT_TAIL)..];
    let mut message = format!("the {} scriptlet of {} {what}", script.slot, script.package);
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

/// The driver's functions: `step` runs a script and reports, `expand` expands a body's macros with
/// the tree's rpm. Between scripts the driver lists the processes left in the sandbox (its PID
/// namespace: `1` is bubblewrap's init, `$$` the driver) with shell builtins alone, so the listing
/// itself starts none.
const DRIVER: &str = r#"# Written by pkglayer: runs each script, reports its end, waits for the word to go on.
left() {
    found=
    for dir in /proc/[0-9]*; do
        pid=${dir#/proc/}
        if [ "$pid" = 1 ] || [ "$pid" = "$$" ]; then continue; fi
        stat=
        { read -r stat <"$dir/stat"; } 2>/dev/null || continue
        state=${stat##*) }
        case $state in Z* | X* | x*) continue ;; esac
        name=
        { read -r name <"$dir/comm"; } 2>/dev/null
        name=${name%%[!A-Za-z0-9._+-]*}
        found="$found $pid:${name:-?}"
    done
}
report() {
    left
    echo "done $1 $2$found"
    read -r verdict && [ "$verdict" = go ]
}
step() {
    number=$1
    shift
    "$@" <"$IN/$number.stdin" >"$OUT/$number.log" 2>&1
    report "$number" "$?"
}
expand() {
    /usr/bin/rpm --eval "$2" >"$OUT/$1.expanded" 2>"$OUT/$1.log" && return 0
    report "$1" expand
    return 1
}
"#;

/// Writes the driver (`run`), one file per script body, its stdin, and the support files.
fn write_inputs(input: &Path, scripts: &[Script], support: &[SupportFile]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut driver = String::from(DRIVER);
    let _ = writeln!(driver, "IN={INPUT}\nOUT={OUTPUT}");
    for (index, script) in scripts.iter().enumerate() {
        let body = input.join(format!("{index}.script"));
        std::fs::write(&body, &script.body)?;
        let stdin: String = script.stdin.iter().map(|p| format!("{p}\n")).collect();
        std::fs::write(input.join(format!("{index}.stdin")), stdin)?;

        let body_path = if script.expand {
            format!("{OUTPUT}/{index}.expanded")
        } else {
            format!("{INPUT}/{index}.script")
        };
        let mut words: Vec<String> = Vec::new();
        if script.is_lua() {
            words.push(RPMLUA.to_string());
            words.push(body_path);
        } else {
            words.extend(script.interpreter.iter().cloned());
            // `%post -p /sbin/ldconfig` has no body: the program runs with the arguments alone.
            if !script.body.is_empty() {
                words.push(body_path);
            }
        }
        words.extend(script.args.iter().cloned());
        let quoted: Vec<String> = words.iter().map(|w| shell_quote(w)).collect();
        let _ = writeln!(driver, "# {} of {}", script.slot, script.package);
        if script.expand {
            let _ = write!(driver, "expand {index} {} && ", shell_quote(&script.body));
        }
        let _ = writeln!(driver, "step {index} {} || exit 0", quoted.join(" "));
    }
    std::fs::write(input.join("run"), driver)?;
    std::fs::write(input.join("ostree-booted"), "")?;
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
