//! Progress bars, drawn only on a terminal (and never with `-q` or `--json`).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::{ProgressBar, ProgressStyle};
use pkglayer_core::progress::{Progress, Silent};

/// A bar of downloaded bytes, with the package count and the rate.
pub struct DownloadBar {
    bar: ProgressBar,
    done: AtomicUsize,
    total: AtomicUsize,
}

impl DownloadBar {
    fn show_count(&self) {
        let done = self.done.load(Ordering::Relaxed);
        let total = self.total.load(Ordering::Relaxed);
        self.bar.set_message(format!("{done}/{total} packages"));
    }
}

impl Progress for DownloadBar {
    fn downloads_started(&self, packages: usize, bytes: u64) {
        self.done.store(0, Ordering::Relaxed);
        self.total.store(packages, Ordering::Relaxed);
        self.bar.set_length(bytes);
        self.bar.set_position(0);
        self.bar.reset_eta();
        self.show_count();
    }

    fn package_downloaded(&self, _nevra: &str, bytes: u64) {
        self.done.fetch_add(1, Ordering::Relaxed);
        self.bar.inc(bytes);
        self.show_count();
    }

    fn downloads_finished(&self) {
        self.bar.finish_and_clear();
    }
}

/// Bars when stderr is a terminal and output is for a person; silence otherwise.
pub fn for_terminal(quiet: bool, json: bool) -> Box<dyn Progress> {
    if quiet || json || !std::io::stderr().is_terminal() {
        return Box::new(Silent);
    }
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template(
            "Downloading {msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec}",
        )
        .expect("a valid progress template")
        .progress_chars("=> "),
    );
    Box::new(DownloadBar {
        bar,
        done: AtomicUsize::new(0),
        total: AtomicUsize::new(0),
    })
}
