//! Turning a plan down before anything is downloaded, so a dry run sees the same refusal as a real
//! run.

use std::collections::{BTreeMap, HashSet};

use anyhow::Result;

use super::InstallPlan;
use crate::error::UserError;
use crate::progress::{Phase, PhaseGuard, Progress};
use crate::repo::filelists::{self, FileKind};
use crate::rpm::Nevra;
use crate::rpm::placement;
use crate::solver::PlannedPackage;

/// Paths a refusal names per package (the rest are counted): enough to see what is wrong.
const SHOWN_PATHS: usize = 3;

/// With `-C/--cache-only`, refuses the plan when a package is not in the package cache: no
/// connection is ever opened, and the dry run says so too.
pub(super) fn refuse_uncached(to_download: &[&PlannedPackage]) -> Result<()> {
    if to_download.is_empty() {
        return Ok(());
    }
    let missing: Vec<String> = to_download.iter().map(|p| p.nevra.to_string()).collect();
    Err(UserError::new(format!(
        "--cache-only: not in the package cache: {}",
        missing.join(", ")
    ))
    .hint("fetch them first with --download-only, or leave out -C/--cache-only")
    .into())
}

/// Refuses the plan when a package it would download ships, by its repo's filelists, a path that
/// has no place in an OSTree tree (`/tmp`, `/home`, `/srv`…: [`placement::place`] gives it none). The
/// import refuses such a package too, but only once it is downloaded; the metadata tells now, and
/// dry runs see the same refusal as real runs.
///
/// Like the import, ghost files are left out (they are not in the payload), and directories count.
/// Files under `/var` and `/run` are left to the import: filelists do not tell a file (refused
/// there) from a symlink (allowed, as a tmpfiles.d line). Paths two new packages share are not
/// judged either: filelists carry no digests and identical files are legal, so compose decides.
///
/// Only packages the package cache lacks are looked at (those in it passed the import), so when
/// nothing is to be downloaded no filelists are read. A repo whose filelists are not at hand (they
/// are fetched only when resolution needs them) is not checked: the import refuses the package then,
/// before anything is deployed.
pub(super) fn refuse_unplaceable_files(
    plan: &InstallPlan,
    to_download: &[&PlannedPackage],
    progress: &dyn Progress,
) -> Result<()> {
    let mut by_repo: BTreeMap<&str, HashSet<Nevra>> = BTreeMap::new();
    for package in to_download {
        by_repo
            .entry(&package.repo)
            .or_default()
            .insert(package.nevra.clone());
    }
    let mut refusals = Vec::new();
    for (id, wanted) in by_repo {
        let Some(path) = plan
            .repos
            .iter()
            .find(|r| r.id == id)
            .and_then(|r| r.filelists.as_deref())
        else {
            continue;
        };
        let phase = PhaseGuard::start(progress, Phase::Filelists);
        let lists = filelists::open(path)
            .and_then(|xml| filelists::read(xml, &wanted))
            .map_err(|err| {
                UserError::new(format!(
                    "the metadata of repo {id} is malformed: {}: {err:#}",
                    path.display()
                ))
                .hint("`pkglayer refresh-md --force` fetches it again; if that does not help, the repo itself is broken")
            })?;
        drop(phase);
        let mut lists: Vec<_> = lists.into_iter().collect();
        lists.sort_by(|a, b| a.0.cmp(&b.0));
        for (nevra, files) in lists {
            let outside: Vec<&str> = files
                .iter()
                .filter(|f| f.kind != FileKind::Ghost && placement::place(&f.path).is_none())
                .map(|f| f.path.as_str())
                .collect();
            if outside.is_empty() {
                continue;
            }
            refusals.push(format!(
                "package {nevra} from repo {id} ships {}, outside the directories an OSTree image may hold",
                list_paths(&outside)
            ));
        }
    }
    if refusals.is_empty() {
        return Ok(());
    }
    Err(UserError::new(refusals.join("\n"))
        .hint("nothing was downloaded; layered packages may only ship files under /usr (but /usr/local, which is the machine's), /etc, /opt, /boot (and directories or symlinks under /var and /run)")
        .into())
}

/// `/a`, `/a and /b`, `/a, /b, /c and 4 more paths`: the first [`SHOWN_PATHS`], and how many more.
fn list_paths(paths: &[&str]) -> String {
    match paths {
        [] => String::new(),
        [only] => only.to_string(),
        _ if paths.len() <= SHOWN_PATHS => {
            let (last, first) = paths.split_last().expect("two or more");
            format!("{} and {last}", first.join(", "))
        }
        _ => {
            let more = paths.len() - SHOWN_PATHS;
            let noun = if more == 1 { "path" } else { "paths" };
            format!("{} and {more} more {noun}", paths[..SHOWN_PATHS].join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_first_paths_and_count_the_rest() {
        let cases: [(&[&str], &str); 5] = [
            (&["/tmp/a"], "/tmp/a"),
            (&["/tmp/a", "/srv/b"], "/tmp/a and /srv/b"),
            (&["/a", "/b", "/c"], "/a, /b and /c"),
            (&["/a", "/b", "/c", "/d"], "/a, /b, /c and 1 more path"),
            (
                &["/a", "/b", "/c", "/d", "/e"],
                "/a, /b, /c and 2 more paths",
            ),
        ];
        for (paths, expected) in cases {
            assert_eq!(list_paths(paths), expected);
        }
    }
}
