//! OpenPGP signatures, checked with the real tools against a repo's `gpgkey=` keys: packages
//! (`gpgcheck=1`) with rpm's `rpmkeys`, `repomd.xml` (`repo_gpgcheck=1`) with `gpg`. Each check
//! uses a keyring made for it in scratch space, holding only the repo's keys: the host's own
//! keyrings are never read or changed.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::rpm::tools::rpmkeys;

/// What a signature check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Signed by one of the keys.
    Valid,
    /// Not vouched for, in words that complete "the package …" (or "repomd.xml …").
    Untrusted(String),
}

/// An rpm keyring (an rpm database of `gpg-pubkey` entries) holding a repo's keys.
pub struct RpmKeyring {
    dir: tempfile::TempDir,
}

impl RpmKeyring {
    /// Imports every key file into a new keyring.
    pub fn new(keys: &[PathBuf]) -> Result<Self> {
        let dir = tempfile::tempdir().context("Creating a keyring directory")?;
        import_each(keys, |key| {
            let mut command = rpmkeys(dir.path());
            command.arg("--import").arg(key);
            command
        })?;
        Ok(RpmKeyring { dir })
    }

    /// Whether the RPM at `path` carries a valid signature by one of the keys.
    pub fn check(&self, path: &Path) -> Result<Verdict> {
        let output = rpmkeys(self.dir.path())
            .args(["-Kv", "--define", "_pkgverify_level signature"])
            .arg(path)
            .output()
            .context("running rpmkeys")?;
        if output.status.success() {
            return Ok(Verdict::Valid);
        }
        let report = String::from_utf8_lossy(&output.stdout);
        let signatures: Vec<&str> = report
            .lines()
            .map(str::trim)
            .filter(|line| line.contains("Signature"))
            .collect();
        let why = if signatures.is_empty() {
            "is not signed".to_string()
        } else if signatures.iter().all(|line| line.ends_with("NOKEY")) {
            format!(
                "is signed with a key the repo's gpgkey does not hold ({})",
                signatures.join("; ")
            )
        } else {
            format!("has a bad signature ({})", signatures.join("; "))
        };
        Ok(Verdict::Untrusted(why))
    }
}

/// Runs the command `import` gives for each key file; one the tool refuses is an error naming it.
fn import_each(keys: &[PathBuf], import: impl Fn(&Path) -> Command) -> Result<()> {
    for key in keys {
        let mut command = import(key);
        let output = command
            .output()
            .with_context(|| format!("running {}", command.get_program().to_string_lossy()))?;
        if !output.status.success() {
            bail!(
                "{} is not a usable OpenPGP public key: {}",
                key.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
    }
    Ok(())
}

/// Whether `signature` (an armored or binary detached signature) is a valid signature of `data` by
/// one of `keys`, checked with `gpg` in a keyring made for the purpose.
pub fn check_detached(keys: &[PathBuf], data: &Path, signature: &Path) -> Result<Verdict> {
    let home = tempfile::tempdir().context("Creating a gpg home directory")?;
    let gpg = || {
        let mut command = Command::new("gpg");
        command
            .arg("--homedir")
            .arg(home.path())
            .args(["--batch", "--no-autostart", "--quiet"]);
        command
    };
    import_each(keys, |key| {
        let mut command = gpg();
        command.arg("--import").arg(key);
        command
    })?;
    let output = gpg()
        .args(["--status-fd", "1", "--verify"])
        .arg(signature)
        .arg(data)
        .output()
        .context("running gpg")?;
    let status = String::from_utf8_lossy(&output.stdout);
    if output.status.success() && status.contains("[GNUPG:] GOODSIG") {
        return Ok(Verdict::Valid);
    }
    let why = if status.contains("[GNUPG:] NO_PUBKEY") {
        "is signed with a key the repo's gpgkey does not hold"
    } else if status.contains("[GNUPG:] BADSIG") {
        "has a bad signature (the file was changed after signing)"
    } else {
        "has no valid signature"
    };
    Ok(Verdict::Untrusted(why.to_string()))
}
