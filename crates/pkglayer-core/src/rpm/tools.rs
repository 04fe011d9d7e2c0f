//! The real rpm tools, invoked one way.
//!
//! Debian's rpm defaults its database to `~/.rpmdb`, and a tree's database is never where the host's
//! is: every invocation names the database it works on, so none can fall back to a default.

use std::path::Path;
use std::process::Command;

/// `rpm --root ROOT --dbpath /DBPATH`: rpm on the database of a tree (or of a copy of one, such as
/// [`crate::rpmdb::checkout_rpmdb`] makes), `dbpath` relative to that root.
pub(crate) fn rpm_in_root(root: &Path, dbpath: &str) -> Command {
    let mut command = Command::new("rpm");
    command
        .arg("--root")
        .arg(root)
        .arg("--dbpath")
        .arg(format!("/{}", dbpath.trim_start_matches('/')));
    command
}

/// `rpm --dbpath DIR`: rpm on the database in `dbdir` alone (queries only: it has no root).
pub(crate) fn rpm_on_database(dbdir: &Path) -> Command {
    let mut command = Command::new("rpm");
    command.arg("--dbpath").arg(dbdir);
    command
}

/// `rpmkeys --dbpath DIR`: rpm's key handling on the keyring database in `dbdir`.
pub(crate) fn rpmkeys(dbdir: &Path) -> Command {
    let mut command = Command::new("rpmkeys");
    command.arg("--dbpath").arg(dbdir);
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(command: &Command) -> Vec<String> {
        command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn every_invocation_names_its_database() {
        let root = Path::new("/scratch/root");
        assert_eq!(
            args(&rpm_in_root(root, "usr/share/rpm")),
            ["--root", "/scratch/root", "--dbpath", "/usr/share/rpm"]
        );
        assert_eq!(
            args(&rpm_in_root(root, "/usr/lib/sysimage/rpm"))[3],
            "/usr/lib/sysimage/rpm"
        );
        assert_eq!(
            args(&rpm_on_database(Path::new("/db"))),
            ["--dbpath", "/db"]
        );
        assert_eq!(args(&rpmkeys(Path::new("/keys"))), ["--dbpath", "/keys"]);
    }
}
