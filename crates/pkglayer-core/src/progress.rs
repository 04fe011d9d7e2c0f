//! How long operations tell their caller what they are doing. The library only reports; the binary
//! decides whether to draw anything (bars on a terminal, nothing otherwise).

/// Receives progress of downloads. Called from download threads, so it must be `Sync`.
pub trait Progress: Sync {
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
