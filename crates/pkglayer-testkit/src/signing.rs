//! An OpenPGP key to sign test packages (`rpmsign`) and repo metadata (`gpg`), in its own gpg home.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use crate::command::run;

/// A signing key pair with no passphrase, removed (and its gpg-agent stopped) when dropped.
pub struct SigningKey {
    home: tempfile::TempDir,
    user_id: String,
    public: PathBuf,
}

impl SigningKey {
    /// A new RSA key for `name` (e.g. `Test Vendor`).
    pub fn generate(name: &str) -> Result<Self> {
        let home = tempfile::tempdir()?;
        let user_id = format!("{name} <{}@test>", name.to_lowercase().replace(' ', "."));
        run(Command::new("gpg")
            .arg("--homedir")
            .arg(home.path())
            .args(["--batch", "--passphrase", "", "--quick-gen-key"])
            .args([user_id.as_str(), "rsa2048", "sign", "never"]))?;
        let public = home.path().join("public.asc");
        let armored = run(Command::new("gpg").arg("--homedir").arg(home.path()).args([
            "--batch",
            "--armor",
            "--export",
            user_id.as_str(),
        ]))?;
        std::fs::write(&public, armored)?;
        Ok(SigningKey {
            home,
            user_id,
            public,
        })
    }

    /// The armored public key, for a repo's `gpgkey=`.
    pub fn public_key(&self) -> &Path {
        &self.public
    }

    /// Signs the RPM at `path` in place with `rpmsign`.
    pub fn sign_rpm(&self, path: &Path) -> Result<()> {
        run(Command::new("rpmsign")
            .arg("--addsign")
            .arg("--define")
            .arg(format!("_gpg_name {}", self.user_id))
            .arg("--define")
            .arg(format!("_gpg_path {}", self.home.path().display()))
            .args(["--define", "__gpg /usr/bin/gpg"])
            .arg(path))?;
        Ok(())
    }

    /// Writes an armored detached signature of `file` to `signature` (e.g. `repomd.xml.asc`).
    pub fn sign_detached(&self, file: &Path, signature: &Path) -> Result<()> {
        let _ = std::fs::remove_file(signature);
        run(Command::new("gpg")
            .arg("--homedir")
            .arg(self.home.path())
            .args([
                "--batch",
                "--yes",
                "--armor",
                "--local-user",
                self.user_id.as_str(),
            ])
            .arg("--output")
            .arg(signature)
            .arg("--detach-sign")
            .arg(file))?;
        Ok(())
    }
}

impl Drop for SigningKey {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.home.path())
            .args(["--kill", "gpg-agent"])
            .status();
    }
}
