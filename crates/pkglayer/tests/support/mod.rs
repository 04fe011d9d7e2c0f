//! What the CLI tests share: running the binary under test and reading its answer.

#![allow(dead_code)] // each test file uses its own subset

pub mod host;
pub mod model;

use std::path::Path;
use std::process::{Command, Output};

use pkglayer_testkit::TEST_ENV;

/// Runs `pkglayer --sysroot SYSROOT ARGS…` with the test environment.
pub fn pkglayer(sysroot: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pkglayer"))
        .arg("--sysroot")
        .arg(sysroot)
        .args(args)
        .envs(TEST_ENV)
        .output()
        .expect("running pkglayer")
}

/// Asserts that pkglayer succeeded; returns its stdout.
pub fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "pkglayer failed: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// Asserts that pkglayer failed with exit status 1 (an error the user can act on); returns stderr.
pub fn failure(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(1),
        "expected a failure, got {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout)
    );
    stderr(output)
}

/// The metadata cache folder of repo `id` in the test stateroot of the sysroot at `sysroot`.
pub fn repo_cache_dir(sysroot: &Path, id: &str) -> std::path::PathBuf {
    let cache = sysroot.join("ostree/deploy/testos/var/cache/pkglayer/repomd-v1");
    std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{id}-"))
        })
        .unwrap_or_else(|| panic!("no cache folder for repo {id} in {}", cache.display()))
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}
