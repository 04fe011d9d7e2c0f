//! What the CLI tests share: running the binary under test and reading its answer.

#![allow(dead_code)] // each test file uses its own subset

pub mod host;

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

pub fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}
