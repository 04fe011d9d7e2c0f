//! Which ID a new user or group gets: the one this machine gave the name before, else one that no
//! account of the tree has and no name on this machine ever had.

use anyhow::Result;

use super::{Accounts, Allocations, Kind};
use crate::error::UserError;

/// System IDs are handed out downwards from here, as useradd and systemd-sysusers do.
const SYSTEM_ID_MAX: u32 = 999;
const SYSTEM_ID_MIN: u32 = 201;
/// Regular IDs upwards from here.
const REGULAR_ID_MIN: u32 = 1000;
/// How many free regular IDs the sandbox's useradd gets to pick from.
const REGULAR_IDS_OFFERED: usize = 100;

/// The ID of `name`, given one (and recorded) if the tree lacks it; true when it was created.
pub(super) fn ensure(
    kind: Kind,
    name: &str,
    wanted: Option<u32>,
    accounts: &mut Accounts,
    allocations: &mut Allocations,
) -> Result<(u32, bool)> {
    if let Some(id) = accounts.id(kind, name) {
        return Ok((id, false));
    }
    let id = allocate(kind, name, wanted, accounts, allocations, true)?;
    accounts.insert(kind, name, id);
    allocations.record(kind, name, id);
    Ok((id, true))
}

/// An ID for a new `name`: the one this machine gave it before, else `wanted` if nobody has or had
/// it, else the highest free system ID (or lowest free regular one). None left is an error: two
/// names sharing an ID would own each other's files.
fn allocate(
    kind: Kind,
    name: &str,
    wanted: Option<u32>,
    accounts: &Accounts,
    allocations: &Allocations,
    system: bool,
) -> Result<u32> {
    if let Some(id) = allocations.get(kind, name) {
        return Ok(id);
    }
    let used = accounts.used(kind);
    let taken = allocations.taken(kind);
    let free = |id: &u32| !used.contains(id) && !taken.contains(id);
    if let Some(id) = wanted.filter(free) {
        return Ok(id);
    }
    if let Some(&id) = free_ids(kind, accounts, allocations, system).first() {
        return Ok(id);
    }
    let (range, first, last) = if system {
        ("system", SYSTEM_ID_MIN, SYSTEM_ID_MAX)
    } else {
        ("regular", REGULAR_ID_MIN, u32::MAX - 1)
    };
    Err(UserError::new(format!(
        "no free {range} {} ID left for {name}: every ID from {first} to {last} is in use or was \
         given out on this machine",
        kind.noun()
    ))
    .hint(format!(
        "remove unused entries from {} only if those accounts are gone for good",
        allocations.path().display()
    ))
    .into())
}

/// IDs nobody on this tree or machine has, in the order they are handed out.
pub(super) fn free_ids(
    kind: Kind,
    accounts: &Accounts,
    allocations: &Allocations,
    system: bool,
) -> Vec<u32> {
    let used = accounts.used(kind);
    let taken = allocations.taken(kind);
    let free = |id: &u32| !used.contains(id) && !taken.contains(id);
    if system {
        (SYSTEM_ID_MIN..=SYSTEM_ID_MAX).rev().filter(free).collect()
    } else {
        (REGULAR_ID_MIN..u32::MAX)
            .filter(free)
            .take(REGULAR_IDS_OFFERED)
            .collect()
    }
}

/// Records the accounts scripts created (present in `after`, absent `before`) in `allocations`.
pub(crate) fn record_created(after: &Accounts, before: &Accounts, allocations: &mut Allocations) {
    for (kind, name, id) in after.added_since(before) {
        allocations.record(kind, &name, id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_back_and_are_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ids");
        let mut allocations = Allocations::load(&path).unwrap();
        let accounts = Accounts::with_ids([(Kind::User, "root", 0), (Kind::User, "a", 999)]);
        let first = allocate(Kind::User, "alice", None, &accounts, &allocations, true).unwrap();
        assert_eq!(first, 998);
        allocations.record(Kind::User, "alice", first);
        allocations.save().unwrap();

        let allocations = Allocations::load(&path).unwrap();
        let again = |name, wanted| {
            allocate(Kind::User, name, wanted, &accounts, &allocations, true).unwrap()
        };
        assert_eq!(again("alice", None), 998);
        // Another name never gets alice's ID, even when alice is not in the tree.
        assert_eq!(again("bob", Some(998)), 997);
        assert_eq!(again("carol", Some(500)), 500);
    }

    #[test]
    fn running_out_of_system_ids_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ids");
        let mut allocations = Allocations::load(&path).unwrap();
        // The tree has the lower half of the range; this machine gave out the upper half before.
        let names: Vec<String> = (SYSTEM_ID_MIN..=SYSTEM_ID_MAX)
            .map(|id| format!("user{id}"))
            .collect();
        let (tree_half, given_half) = names.split_at(names.len() / 2);
        let mut accounts = Accounts::with_ids(
            tree_half
                .iter()
                .zip(SYSTEM_ID_MIN..)
                .map(|(name, id)| (Kind::User, name.as_str(), id)),
        );
        for (name, id) in given_half
            .iter()
            .zip(SYSTEM_ID_MIN + tree_half.len() as u32..)
        {
            allocations.record(Kind::User, name, id);
        }
        assert!(free_ids(Kind::User, &accounts, &allocations, true).is_empty());

        let err = ensure(Kind::User, "late", None, &mut accounts, &mut allocations).unwrap_err();
        assert_eq!(
            err.downcast_ref::<UserError>(),
            Some(
                &UserError::new(
                    "no free system user ID left for late: every ID from 201 to 999 is in use or \
                     was given out on this machine"
                )
                .hint(format!(
                    "remove unused entries from {} only if those accounts are gone for good",
                    path.display()
                ))
            )
        );
        // Nothing was recorded for the name that got no ID.
        assert_eq!(allocations.get(Kind::User, "late"), None);
        assert_eq!(accounts.id(Kind::User, "late"), None);
        // Groups have their own range, still free.
        assert_eq!(
            ensure(Kind::Group, "late", None, &mut accounts, &mut allocations).unwrap(),
            (999, true)
        );
        // A name given an ID before still gets it back.
        assert_eq!(
            ensure(Kind::User, "user999", None, &mut accounts, &mut allocations).unwrap(),
            (999, true)
        );
    }
}
