//! dnf as the reference resolver: its transaction for the same base rpmdb, repos and requests, and
//! ours in the same form, for the parity tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pkglayer_testkit::host_arch;
use serde_json::Value;

/// The system Python, where Debian installs the dnf module.
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// dnf's installroot beside `dir`: the rpmdb of `deployment` where `%_dbpath` says, its os-release
/// (for the module platform), and a HOME whose `.rpmmacros` points rpm there. Returns (installroot,
/// home).
pub fn installroot(dir: &Path, deployment: &Path) -> (PathBuf, PathBuf) {
    let installroot = dir.join("dnf-root");
    std::fs::create_dir_all(installroot.join("usr/share")).unwrap();
    std::fs::create_dir_all(installroot.join("etc")).unwrap();
    pkglayer_testkit::run(
        Command::new("cp")
            .arg("-a")
            .arg(deployment.join("usr/share/rpm"))
            .arg(installroot.join("usr/share/rpm")),
    )
    .unwrap();
    std::fs::copy(
        deployment.join("usr/lib/os-release"),
        installroot.join("etc/os-release"),
    )
    .unwrap();
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join(".rpmmacros"), "%_dbpath /usr/share/rpm\n").unwrap();
    (installroot, home)
}

/// dnf's transaction (`support/dnf_resolve.py`: sorted NEVRAs, or its error) for `specs` with the
/// repos of `reposdir`, on a fresh metadata cache.
pub fn transaction(
    installroot: &Path,
    home: &Path,
    reposdir: &Path,
    specs: &[&str],
) -> Result<Vec<String>, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/dnf_resolve.py");
    let cache = installroot.with_extension("cache");
    let _ = std::fs::remove_dir_all(&cache);
    let output = Command::new(SYSTEM_PYTHON)
        .arg(script)
        .arg(installroot)
        .arg(reposdir)
        .arg(&cache)
        .arg("1")
        .arg(host_arch())
        .args(specs)
        .env("HOME", home)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "dnf_resolve.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    match json.get("install") {
        Some(list) => Ok(list
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()),
        None => Err(json["error"].as_str().unwrap_or_default().to_string()),
    }
}

/// Our transaction from a `--dry-run --json` run: sorted NEVRAs, or the error text.
pub fn planned(output: &Output) -> Result<Vec<String>, String> {
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut nevras: Vec<String> = json["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["nevra"].as_str().unwrap().to_string())
        .collect();
    nevras.sort();
    Ok(nevras)
}
