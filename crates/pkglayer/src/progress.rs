//! Progress on a terminal: a spinner naming the phase in progress, a bar of bytes while packages
//! download. Nothing is drawn with `-q`, `--json` or when stderr is not a terminal (`-v` logs each
//! phase's duration instead).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use pkglayer_core::progress::{Phase, Progress, Silent};

/// One line on stderr: a spinner per phase, a bar during downloads.
pub struct TerminalProgress {
    bar: ProgressBar,
    /// Phases in progress, innermost last (scripts run inside compose).
    phases: Mutex<Vec<Phase>>,
    downloaded: AtomicUsize,
    to_download: AtomicUsize,
}

impl TerminalProgress {
    /// A spinner saying what `phase` does.
    fn spin(&self, phase: Phase) {
        self.bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}…").expect("a valid progress template"),
        );
        self.bar.set_message(doing(phase));
        self.bar.enable_steady_tick(Duration::from_millis(120));
    }

    fn show_count(&self) {
        let done = self.downloaded.load(Ordering::Relaxed);
        let total = self.to_download.load(Ordering::Relaxed);
        self.bar.set_message(format!("{done}/{total} packages"));
    }
}

/// What the spinner says during `phase`.
fn doing(phase: Phase) -> &'static str {
    match phase {
        Phase::Metadata => "Syncing repo metadata",
        Phase::Solve => "Resolving",
        Phase::Filelists => "Reading file lists",
        Phase::Download => "Downloading",
        Phase::Import => "Importing packages",
        Phase::Compose => "Composing the layered tree",
        Phase::Scripts => "Running package scripts",
        Phase::Deploy => "Deploying",
    }
}

impl Progress for TerminalProgress {
    fn phase_started(&self, phase: Phase) {
        self.phases.lock().expect("progress lock").push(phase);
        if phase != Phase::Download {
            self.spin(phase); // downloads draw their bar instead
        }
    }

    fn phase_finished(&self, phase: Phase, _elapsed: Duration) {
        let mut phases = self.phases.lock().expect("progress lock");
        if let Some(at) = phases.iter().rposition(|p| *p == phase) {
            phases.remove(at);
        }
        self.bar.disable_steady_tick();
        self.bar.finish_and_clear();
        self.bar.reset();
        if let Some(&outer) = phases.last() {
            self.spin(outer);
        }
    }

    fn downloads_started(&self, packages: usize, bytes: u64) {
        self.downloaded.store(0, Ordering::Relaxed);
        self.to_download.store(packages, Ordering::Relaxed);
        self.bar.set_style(
            ProgressStyle::with_template(
                "Downloading {msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec}",
            )
            .expect("a valid progress template")
            .progress_chars("=> "),
        );
        self.bar.set_length(bytes);
        self.bar.set_position(0);
        self.bar.reset_eta();
        self.show_count();
    }

    fn package_downloaded(&self, _nevra: &str, bytes: u64) {
        self.downloaded.fetch_add(1, Ordering::Relaxed);
        self.bar.inc(bytes);
        self.show_count();
    }

    fn downloads_finished(&self) {
        self.bar.finish_and_clear();
    }
}

/// Drawing when stderr is a terminal and output is for a person; silence otherwise.
pub fn for_terminal(quiet: bool, json: bool) -> Box<dyn Progress> {
    if quiet || json || !std::io::stderr().is_terminal() {
        return Box::new(Silent);
    }
    Box::new(TerminalProgress {
        bar: ProgressBar::new(0),
        phases: Mutex::new(Vec::new()),
        downloaded: AtomicUsize::new(0),
        to_download: AtomicUsize::new(0),
    })
}
