//! The `useradd` and `groupadd` wrappers that scripts run in the sandbox, so accounts they create
//! get stable IDs too. The shell lives in `wrappers/` next to this file.

use super::ids::free_ids;
use super::{Accounts, Allocations, Kind};
use crate::scripts::sandbox::SupportFile;

/// Shell functions the wrappers share (POSIX sh, no external tools: any tree's shell runs them).
const ACCOUNTS_SH: &str = include_str!("wrappers/accounts.sh");
/// The tree's `useradd`, given `-u` and `-g` unless the script names them.
const USERADD: &str = include_str!("wrappers/useradd");
/// The tree's `groupadd`, given `-g` unless the script names it.
const GROUPADD: &str = include_str!("wrappers/groupadd");

/// The files the sandbox needs so `useradd`/`groupadd` in scripts hand out stable IDs: wrappers
/// ahead of the tree's tools in `PATH`, the machine's allocations, and the free IDs to pick from.
pub(crate) fn sandbox_support(accounts: &Accounts, allocations: &Allocations) -> Vec<SupportFile> {
    let list = |kind: Kind, system: bool| -> String {
        free_ids(kind, accounts, allocations, system)
            .iter()
            .map(|id| format!("{id}\n"))
            .collect()
    };
    let mut files = vec![
        SupportFile {
            path: "ids".into(),
            contents: allocations.text(),
        },
        SupportFile {
            path: "bin/useradd".into(),
            contents: USERADD.into(),
        },
        SupportFile {
            path: "bin/groupadd".into(),
            contents: GROUPADD.into(),
        },
        SupportFile {
            path: "accounts.sh".into(),
            contents: ACCOUNTS_SH.into(),
        },
    ];
    // The lists' names are what `pick` in accounts.sh reads: `free-KIND-RANGE`.
    for (kind, system, name) in [
        (Kind::User, true, "free-u-system"),
        (Kind::User, false, "free-u-regular"),
        (Kind::Group, true, "free-g-system"),
        (Kind::Group, false, "free-g-regular"),
    ] {
        files.push(SupportFile {
            path: name.into(),
            contents: list(kind, system),
        });
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shell is only run inside a sandbox; at least check it parses.
    #[test]
    fn wrappers_are_valid_shell() {
        for (name, script) in [
            ("accounts.sh", ACCOUNTS_SH),
            ("useradd", USERADD),
            ("groupadd", GROUPADD),
        ] {
            let output = std::process::Command::new("sh")
                .args(["-n", "-c", script])
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{name}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}
