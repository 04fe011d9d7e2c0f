//! Package graphs the tests share, named for what they exercise.
//!
//! A test that needs a variation (another version, another file) builds it next to these, in the
//! test, where the difference can be seen.

use crate::package::TestPackage;

/// strace-6.1-1, which requires `libfoo >= 2` (a versioned dependency) and `/usr/bin/helper` (a file
/// dependency). Its `/usr/bin/strace` prints `strace 6.1`.
pub fn strace() -> TestPackage {
    TestPackage::new("strace", "6.1-1")
        .requires("libfoo >= 2")
        .requires("/usr/bin/helper")
        .executable("/usr/bin/strace", "#!/bin/sh\necho strace 6.1\n")
}

/// libfoo-2.3-1, the version strace needs: `/usr/lib64/libfoo.so.2` holds `libfoo 2`.
pub fn libfoo_2() -> TestPackage {
    TestPackage::new("libfoo", "2.3-1").file("/usr/lib64/libfoo.so.2", "libfoo 2")
}

/// libfoo-1.0-1, too old for strace: `/usr/lib64/libfoo.so.1` holds `libfoo 1` (a path only the
/// repo's filelists knows).
pub fn libfoo_1() -> TestPackage {
    TestPackage::new("libfoo", "1.0-1").file("/usr/lib64/libfoo.so.1", "libfoo 1")
}

/// helper-tools-1.0-1: provides `/usr/bin/helper` (in primary, like every `/usr/bin` path) and
/// `/usr/share/helper/manual.txt` (in filelists only).
pub fn helper_tools() -> TestPackage {
    TestPackage::new("helper-tools", "1.0-1")
        .executable("/usr/bin/helper", "#!/bin/sh\n")
        .file("/usr/share/helper/manual.txt", "manual")
}

/// A request and what it pulls in: strace, libfoo-2.3 (by version) and helper-tools (by file).
/// `install strace` layers exactly these three.
pub fn strace_with_dependencies() -> Vec<TestPackage> {
    vec![strace(), libfoo_2(), helper_tools()]
}

/// A repo to resolve requests against, by every kind of spec, and with requests that cannot be
/// met:
///
/// - [`strace_with_dependencies`], and [`libfoo_1`] beside libfoo-2.3 (`libfoo-1.0`, `libfoo < 2`,
///   `/usr/lib64/libfoo.so.1` pick the old one);
/// - `vim-minimal` provides the virtual `text-editor`;
/// - `manual-reader` requires a file only filelists lists (helper-tools' manual);
/// - `needs-missing` requires what nothing provides;
/// - `kernel-breaker` conflicts with the base's `kernel-core`.
pub fn resolution_repo() -> Vec<TestPackage> {
    let mut packages = strace_with_dependencies();
    packages.extend([
        libfoo_1(),
        TestPackage::new("manual-reader", "1.0-1").requires("/usr/share/helper/manual.txt"),
        TestPackage::new("vim-minimal", "9.0-1").provides("text-editor"),
        TestPackage::new("needs-missing", "1.0-1").requires("does-not-exist"),
        TestPackage::new("kernel-breaker", "1.0-1").conflicts("kernel-core"),
    ]);
    packages
}
