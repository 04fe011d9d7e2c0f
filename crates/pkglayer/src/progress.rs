//! Progress bars, drawn only on a terminal (and never with `-q` or `--json`).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use pkglayer_core::progress::{Progress, Silent};

/// A bar of downloaded bytes, with the package count and the rate.
pub struct DownloadBar {
    bar: ProgressBar,
}

impl Progress for DownloadBar {
    fn downloads_started(&self, packages: usize, bytes: u64) {
        self.bar.set_length(bytes);
        self.bar.set_position(0);
        self.bar.set_message(format!("0/{packages} packages"));
        self.bar.reset_eta();
    }

    fn package_downloaded(&self, _nevra: &str, bytes: u64) {
        self.bar.inc(bytes);
        let done = self
            .bar
            .message()
            .split('/')
            .next()
            .and_then(|n| n.parse::<usize>().ok());
        let total = self
            .bar
            .message()
            .split('/')
            .nth(1)
            .map(str::to_string)
            .unwrap_or_default();
        self.bar
            .set_message(format!("{}/{total}", done.unwrap_or(0) + 1));
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
    Box::new(DownloadBar { bar })
}
