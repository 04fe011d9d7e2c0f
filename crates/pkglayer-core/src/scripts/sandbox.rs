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
use std::io::{BufRead, Read as _, Seek as _, Write as _};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ostree::gio;
use ostree::gio::prelude::*;

use super::Script;
use super::lower::{Lower, overlay_path};
use crate::error::UserError;

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
/// How much of a script's output is read back (its end).
const OUTPUT_READ: u64 = 64 * 1024;

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

/// Runs in the private mount namespace: mounts the space and the overlay, starts bubblewrap, says
/// its PID, and holds the namespace until its stdin ends (words the driver did not read are
/// skipped). Should pkglayer die, a watcher kills bubblewrap (and so the sandbox) within a second.
/// Arguments: pkglayer's PID, space size, space, overlay mount point, lowerdir, seccomp filter
/// file, then bubblewrap's command line.
const HOLDER: &str = r#"owner=$1 size=$2 space=$3 merged=$4 lower=$5 filter=$6
shift 6
exec 3<&0
mount -t tmpfs -o "size=$size,mode=0755" pkglayer-scripts "$space" || exit 1
cd "$space" || exit 1
mkdir upper work out tmp run var || exit 1
for dir in $VAR_SKELETON; do mkdir "$dir" || exit 1; done
chmod 1777 tmp var/tmp || exit 1
mount -t overlay pkglayer-scripts -o "lowerdir=$lower,upperdir=$space/upper,workdir=$space/work" "$merged" || exit 1
"$@" 0<&3 3<&- 9<"$filter" 2>"$space/sandbox.err" &
sandbox=$!
echo "pid $sandbox"
(
    while kill -0 "$owner" 2>/dev/null; do sleep 1; done
    kill -KILL "$sandbox"
) 0</dev/null 3<&- >/dev/null 2>&1 &
watcher=$!
wait "$sandbox"
echo "ended $?"
kill "$watcher" 2>/dev/null
while read -r _; do :; done
"#;

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

/// What the driver said about a script.
struct Done {
    index: usize,
    /// Its exit status, or `expand` when its macros could not be expanded.
    status: String,
    /// Processes it left running, as `PID:NAME`.
    left: Vec<String>,
}

enum Report {
    Done(Done),
    TimedOut,
    /// bubblewrap ended (with this status) before the driver reported.
    Ended(String),
}

/// The shell holding the private mount namespace, and the sandbox it started.
struct Holder {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
    /// bubblewrap's PID, until it has ended.
    bwrap: Option<rustix::process::Pid>,
    /// The space's mount point (as the holder sees it).
    space: PathBuf,
}

impl Holder {
    fn start(mut command: Command, space: &Path) -> Result<Self> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("Starting the script sandbox (unshare, bwrap)")?;
        let stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = (&mut stderr).take(OUTPUT_READ).read_to_string(&mut text);
            text
        });
        let mut holder = Holder {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr: Some(stderr),
            bwrap: None,
            space: space.to_path_buf(),
        };
        match holder.lines.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.starts_with("pid ") => {
                let pid = line[4..]
                    .trim()
                    .parse::<i32>()
                    .ok()
                    .and_then(rustix::process::Pid::from_raw)
                    .with_context(|| format!("the script sandbox said {line:?}"))?;
                holder.bwrap = Some(pid);
                Ok(holder)
            }
            other => {
                holder.close();
                bail!(
                    "the script sandbox could not be set up ({}): {}",
                    other.unwrap_or_default(),
                    holder.stderr().trim()
                )
            }
        }
    }

    /// The space, through the holder's mount namespace.
    fn space(&self) -> PathBuf {
        let relative = self.space.strip_prefix("/").unwrap_or(&self.space);
        Path::new("/proc")
            .join(self.child.id().to_string())
            .join("root")
            .join(relative)
    }

    /// The driver's next report, until `deadline`.
    fn next_report(&mut self, deadline: Instant) -> Report {
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(wait) {
                Ok(line) => {
                    if let Some(status) = line.strip_prefix("ended ") {
                        self.bwrap = None;
                        return Report::Ended(status.to_string());
                    }
                    let mut words = line.split(' ');
                    if words.next() != Some("done") {
                        continue;
                    }
                    let index = words.next().and_then(|w| w.parse().ok());
                    let status = words.next().unwrap_or_default().to_string();
                    let left = words
                        .filter(|w| !w.is_empty())
                        .map(str::to_string)
                        .collect();
                    if let Some(index) = index {
                        return Report::Done(Done {
                            index,
                            status,
                            left,
                        });
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => return Report::TimedOut,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.bwrap = None;
                    return Report::Ended("unknown".into());
                }
            }
        }
    }

    /// Tells the driver to run the next script.
    fn go_on(&mut self) -> Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .context("the script sandbox is closed")?;
        stdin
            .write_all(b"go\n")
            .context("Telling the script sandbox to go on")?;
        Ok(())
    }

    /// Kills the sandbox (bubblewrap, and so its PID namespace) and waits until it has ended; the
    /// space stays.
    fn stop(&mut self) {
        let Some(pid) = self.bwrap.take() else {
            return;
        };
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if line.starts_with("ended ") {
                break;
            }
        }
    }

    /// Room left on the space, in bytes.
    fn space_left(&self) -> Result<u64> {
        let stat = rustix::fs::statvfs(self.space())
            .context("Reading how much room the scripts have left")?;
        Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
    }

    /// The end of a file of the scripts' output directory (`name` relative to it), or nothing.
    fn read_output(&self, name: &str) -> String {
        let path = self.space().join("out").join(name);
        let read = || -> std::io::Result<String> {
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(&path)?;
            if !file.metadata()?.is_file() {
                return Ok(String::new());
            }
            let len = file.metadata()?.len();
            file.seek(std::io::SeekFrom::Start(len.saturating_sub(OUTPUT_READ)))?;
            let mut bytes = Vec::new();
            file.take(OUTPUT_READ).read_to_end(&mut bytes)?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        };
        read().unwrap_or_default()
    }

    /// What the holder printed on stderr, once it has ended.
    fn stderr(&mut self) -> String {
        self.close();
        self.stderr
            .take()
            .and_then(|thread| thread.join().ok())
            .unwrap_or_default()
    }

    /// Stops the sandbox, lets the holder go and waits for it.
    fn close(&mut self) {
        self.stop();
        self.stdin = None;
        let _ = self.child.wait();
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.close();
    }
}

/// The paths (relative to the root) of the tree `root` that the overlay's `upper` directory hides,
/// but those `ignore` allows: whiteouts, and the entries of directories deleted and made again
/// (opaque).
fn deletions(
    upper: &Path,
    root: &gio::File,
    ignore: &dyn Fn(&str) -> bool,
) -> Result<BTreeSet<String>> {
    let mut found = BTreeSet::new();
    hidden(upper, root, "", ignore, &mut found)?;
    Ok(found)
}

fn hidden(
    dir: &Path,
    tree: &gio::File,
    relative: &str,
    ignore: &dyn Fn(&str) -> bool,
    found: &mut BTreeSet<String>,
) -> Result<()> {
    let child_path = |name: &str| {
        if relative.is_empty() {
            name.to_string()
        } else {
            format!("{relative}/{name}")
        }
    };
    // One lookup in the tree per entry of the upper directory: the cost follows what the scripts
    // wrote, not the size of the directories they wrote in.
    let kind_in_tree = |name: &str| {
        tree.child(name).query_file_type(
            gio::FileQueryInfoFlags::NOFOLLOW_SYMLINKS,
            gio::Cancellable::NONE,
        )
    };
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("Reading {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let child = child_path(&name);
        let meta = std::fs::symlink_metadata(&path)?;
        let kind = meta.file_type();
        let was = kind_in_tree(&name);
        if was == gio::FileType::Unknown {
            continue;
        }
        names.insert(name.clone());
        if kind.is_char_device() && meta.rdev() == 0 {
            if !ignore(&child) {
                found.insert(child);
            }
        } else if kind.is_dir() && was == gio::FileType::Directory {
            hidden(&path, &tree.child(&name), &child, ignore, found)?;
        }
    }
    if !relative.is_empty() && is_opaque(dir) {
        for (name, _) in crate::tree::children(tree)? {
            if !names.contains(&name) {
                let child = child_path(&name);
                if !ignore(&child) {
                    found.insert(child);
                }
            }
        }
    }
    Ok(())
}

/// The paths packages own, as rpm names them (`/etc/…` for the tree's `usr/etc/…`), with their
/// owners.
struct Owned(std::collections::BTreeMap<String, String>);

impl Owned {
    fn new(owners: Vec<(String, String)>) -> Self {
        Owned(owners.into_iter().collect())
    }

    /// Of `deleted` (paths relative to the tree's root), those a package owns or that hold
    /// something a package owns, each with an owner: (path as rpm names it, owner).
    fn of(&self, deleted: &[&String]) -> Vec<(String, String)> {
        let mut found = Vec::new();
        for path in deleted {
            let rpm_path = match path.strip_prefix("usr/etc") {
                Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("/etc{rest}"),
                _ => format!("/{path}"),
            };
            let owner = self.0.get(&rpm_path).or_else(|| {
                self.0
                    .range(format!("{rpm_path}/")..)
                    .next()
                    .filter(|(owned, _)| owned.starts_with(&format!("{rpm_path}/")))
                    .map(|(_, owner)| owner)
            });
            if let Some(owner) = owner {
                found.push((rpm_path, owner.clone()));
            }
        }
        found
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletions_count_when_a_package_owns_the_path_or_what_it_holds() {
        let owned = Owned::new(vec![
            ("/usr/lib/os-release".into(), "release".into()),
            ("/etc/group".into(), "setup".into()),
            ("/usr/share/docs/README".into(), "docs".into()),
        ]);
        let deleted: Vec<String> = [
            "usr/lib/os-release",
            "usr/etc/group",
            "usr/share/docs",
            "usr/share/made-by-a-script",
            "usr/etcetera",
            "usr/lib/os",
        ]
        .iter()
        .map(|p| p.to_string())
        .collect();
        let deleted: Vec<&String> = deleted.iter().collect();
        assert_eq!(
            owned.of(&deleted),
            [
                ("/usr/lib/os-release".to_string(), "release".to_string()),
                ("/etc/group".into(), "setup".into()),
                ("/usr/share/docs".into(), "docs".into()),
            ]
        );
    }
}
