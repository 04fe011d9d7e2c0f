//! How operations tell their caller what they are doing. The library only reports; the binary
//! decides whether to draw anything (a spinner or bar on a terminal, lines with `-v`, nothing
//! otherwise).

use std::time::{Duration, Instant};

/// A step of an operation that can take seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Fetching (or reusing) repo metadata.
    Metadata,
    /// Resolving the request against the base and the repos.
    Solve,
    /// Reading the repos' file lists of packages to download.
    Filelists,
    /// Downloading packages ([`Progress::package_downloaded`] tells each).
    Download,
    /// Importing packages into the package cache.
    Import,
    /// Composing the layered tree (scripts included).
    Compose,
    /// Running package scripts in their sandbox.
    Scripts,
    /// Writing the new deployment.
    Deploy,
}

impl Phase {
    /// The phase's name in logs (`phase compose took 12.3 ms`; the benchmarks read it).
    pub fn name(self) -> &'static str {
        match self {
            Phase::Metadata => "metadata",
            Phase::Solve => "solve",
            Phase::Filelists => "filelists",
            Phase::Download => "download",
            Phase::Import => "import",
            Phase::Compose => "compose",
            Phase::Scripts => "scripts",
            Phase::Deploy => "deploy",
        }
    }
}

/// Receives progress of an operation. Downloads report from their own threads, so it must be
/// `Sync`. Every method does nothing unless implemented.
pub trait Progress: Sync {
    /// `phase` began.
    fn phase_started(&self, _phase: Phase) {}
    /// `phase` ended (or failed) after `_elapsed`.
    fn phase_finished(&self, _phase: Phase, _elapsed: Duration) {}
    /// `packages` packages of `bytes` bytes in all (as the metadata says) are about to be fetched.
    fn downloads_started(&self, _packages: usize, _bytes: u64) {}
    /// One package arrived, `bytes` long.
    fn package_downloaded(&self, _nevra: &str, _bytes: u64) {}
    /// All downloads are done (or failed).
    fn downloads_finished(&self) {}
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {}

/// A phase in progress: reported started when made, finished (and logged with its duration at
/// `-v`) when dropped, also on an early return with an error.
pub(crate) struct PhaseGuard<'a> {
    progress: &'a dyn Progress,
    phase: Phase,
    /// What the log line adds after the name (`scripts (3 run)`).
    detail: String,
    started: Instant,
}

impl<'a> PhaseGuard<'a> {
    /// Starts `phase`.
    pub(crate) fn start(progress: &'a dyn Progress, phase: Phase) -> Self {
        progress.phase_started(phase);
        PhaseGuard {
            progress,
            phase,
            detail: String::new(),
            started: Instant::now(),
        }
    }

    /// Adds `detail` to the phase's log line.
    pub(crate) fn detail(&mut self, detail: String) {
        self.detail = detail;
    }
}

impl Drop for PhaseGuard<'_> {
    fn drop(&mut self) {
        let elapsed = self.started.elapsed();
        let separator = if self.detail.is_empty() { "" } else { " " };
        tracing::info!(
            "phase {}{separator}{} took {:.1} ms",
            self.phase.name(),
            self.detail,
            elapsed.as_secs_f64() * 1000.0
        );
        self.progress.phase_finished(self.phase, elapsed);
    }
}
