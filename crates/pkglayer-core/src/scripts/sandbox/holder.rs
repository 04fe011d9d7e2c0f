//! The holder: the small shell that keeps the scripts' private mount namespace (the space and the
//! overlay) alive, starts bubblewrap in it, and passes the driver's reports on, until pkglayer has
//! read the results.

use std::io::{BufRead, Read as _, Seek as _, Write as _};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How much of a script's output is read back (its end).
const OUTPUT_READ: u64 = 64 * 1024;

/// Runs in the private mount namespace: mounts the space and the overlay, starts bubblewrap, says
/// its PID, and holds the namespace until its stdin ends (words the driver did not read are
/// skipped). Should pkglayer die, a watcher kills bubblewrap (and so the sandbox) within a second.
/// Arguments: pkglayer's PID, space size, space, overlay mount point, lowerdir, seccomp filter
/// file, then bubblewrap's command line.
pub(super) const HOLDER: &str = r#"owner=$1 size=$2 space=$3 merged=$4 lower=$5 filter=$6
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

/// What the driver said about a script.
pub(super) struct Done {
    pub(super) index: usize,
    /// Its exit status, or `expand` when its macros could not be expanded.
    pub(super) status: String,
    /// Processes it left running, as `PID:NAME`.
    pub(super) left: Vec<String>,
}

pub(super) enum Report {
    Done(Done),
    TimedOut,
    /// bubblewrap ended (with this status) before the driver reported.
    Ended(String),
}

/// The shell holding the private mount namespace, and the sandbox it started.
pub(super) struct Holder {
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
    pub(super) fn start(mut command: Command, space: &Path) -> Result<Self> {
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
    pub(super) fn space(&self) -> PathBuf {
        let relative = self.space.strip_prefix("/").unwrap_or(&self.space);
        Path::new("/proc")
            .join(self.child.id().to_string())
            .join("root")
            .join(relative)
    }

    /// The driver's next report, until `deadline`.
    pub(super) fn next_report(&mut self, deadline: Instant) -> Report {
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
    pub(super) fn go_on(&mut self) -> Result<()> {
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
    pub(super) fn stop(&mut self) {
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
    pub(super) fn space_left(&self) -> Result<u64> {
        let stat = rustix::fs::statvfs(self.space())
            .context("Reading how much room the scripts have left")?;
        Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
    }

    /// The end of a file of the scripts' output directory (`name` relative to it), or nothing.
    pub(super) fn read_output(&self, name: &str) -> String {
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
    pub(super) fn stderr(&mut self) -> String {
        self.close();
        self.stderr
            .take()
            .and_then(|thread| thread.join().ok())
            .unwrap_or_default()
    }

    /// Stops the sandbox, lets the holder go and waits for it.
    pub(super) fn close(&mut self) {
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
