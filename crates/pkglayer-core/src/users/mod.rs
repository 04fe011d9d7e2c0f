//! Users and groups that layered packages create, with IDs that never change on this machine.
//!
//! Two ways create them: `sysusers.d` fragments of layered packages (read here, before any script,
//! as rpm's `%sysusers` does) and `useradd`/`groupadd` in `%pre` scripts (the tree's own tools, run
//! through small wrappers in the sandbox's `PATH` that add `-u`/`-g`). Either way the ID comes from
//! the machine's allocation file (`var/lib/pkglayer/ids` in the stateroot) when the name was seen
//! before, else it is a free one no other name ever had here. So a user keeps its ID across every
//! re-layering and base upgrade, and after its package is uninstalled and installed again: files it
//! owns in `/var` stay its own. When no such ID is left, layering fails rather than share one.
//!
//! Entries go to the file the base keeps its accounts in: `usr/lib/passwd` (nss-altfiles) when the
//! base has one, else `usr/etc/passwd`; likewise for `group`.
//!
//! The parts: `allocations` (the machine's file of given-out IDs), `accounts` (a tree's passwd and
//! group files), `ids` (which ID a new name gets), `sysusers` (`sysusers.d` fragments) and `wrappers`
//! (the `useradd`/`groupadd` wrappers for scripts).

mod accounts;
mod allocations;
mod ids;
mod sysusers;
mod wrappers;

use std::collections::{BTreeMap, BTreeSet};

pub(crate) use accounts::Accounts;
pub(crate) use allocations::Allocations;
pub(crate) use ids::record_created;
pub(crate) use sysusers::{apply_sysusers, sysusers_fragments};
pub(crate) use wrappers::sandbox_support;

/// Whether a name or ID is a user's or a group's: the two have separate namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    User,
    Group,
}

impl Kind {
    /// The letter of the kind in the allocation file and the wrappers' lists (`u`, `g`).
    fn letter(self) -> &'static str {
        match self {
            Kind::User => "u",
            Kind::Group => "g",
        }
    }

    /// The name of the tree's file holding accounts of this kind.
    fn file(self) -> &'static str {
        match self {
            Kind::User => "passwd",
            Kind::Group => "group",
        }
    }

    /// The kind in words, for messages.
    fn noun(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Group => "group",
        }
    }
}

/// The IDs of the names of `kind` in a name → ID map.
fn ids_of(ids: &BTreeMap<(Kind, String), u32>, kind: Kind) -> BTreeSet<u32> {
    ids.iter()
        .filter(|((k, _), _)| *k == kind)
        .map(|(_, id)| *id)
        .collect()
}
