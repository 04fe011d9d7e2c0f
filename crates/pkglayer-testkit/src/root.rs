//! Tests that need root skip, with a message, when they run without it.
//!
//! Making an OSTree sysroot (`ostree admin init-fs`, `deploy`), installing test RPMs into a base
//! tree with `rpm --root`, and running scripts in bubblewrap all need root: as another user they
//! would fail on the first `chown`, far from the reason.

/// What a test that needs root prints to stderr when it is skipped.
pub const NEEDS_ROOT: &str = "skipped: needs root (ostree sysroots and bubblewrap)";

/// Whether this process runs as root (effective user ID 0).
pub fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    // `Uid:` real, effective, saved, filesystem.
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

/// At the start of a test that needs root: without root, says so on stderr and returns, so the
/// test passes as skipped instead of failing.
///
/// ```no_run
/// fn layers_a_package() {
///     pkglayer_testkit::require_root!();
///     // …
/// }
/// ```
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::is_root() {
            eprintln!("{}", $crate::NEEDS_ROOT);
            return;
        }
    };
}
