//! Matching requests to packages as dnf does, and the obsoletes relations between them.

use std::ffi::CString;

use anyhow::{Context, Result};
use libsolv_sys as ffi;

use super::{Pool, Queue, reldep_id};

/// What a request selects, from [`Pool::select`] (and maybe [`Pool::widen`]).
#[derive(Debug, Clone)]
pub struct Selection {
    /// libsolv job pairs (how, what), without the action bits.
    pub(super) jobs: Vec<ffi::Id>,
    /// The packages it selects, base packages included.
    pub solvables: Vec<ffi::Id>,
    pub matched: Matched,
}

/// How a request matched packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matched {
    /// It is the name of packages, without version or architecture (dnf's "has just name").
    Name,
    /// It is a capability that packages provide, without version or architecture.
    Provide,
    /// A file path, a qualified name (`name.arch`, `name-version`, NEVRA), or `name OP version`.
    Other,
}

impl Pool {
    /// What `request` selects (by name, provide, file path, `name.arch`, `name-evr`, or
    /// `name OP version`); nothing when no package matches.
    pub fn select(&self, request: &str) -> Result<Selection> {
        let request_c = CString::new(request).context("request with NUL")?;
        let flags = ffi::SELECTION_NAME
            | ffi::SELECTION_PROVIDES
            | ffi::SELECTION_FILELIST
            | ffi::SELECTION_CANON
            | ffi::SELECTION_DOTARCH
            | ffi::SELECTION_REL;
        let mut selection = Queue::new();
        let mut solvables = Queue::new();
        // SAFETY: the pool is prepared; both queues are initialised and owned here.
        let matched = unsafe {
            let matched = ffi::selection_make(
                self.ptr(),
                &mut selection.0,
                request_c.as_ptr(),
                flags as i32,
            );
            ffi::selection_solvables(self.ptr(), &mut selection.0, &mut solvables.0);
            matched as u32
        };
        // selection_make answers with the one way the request matched, plus DOTARCH, REL or CANON
        // when it carried an architecture or a version.
        let matched = if matched == ffi::SELECTION_NAME {
            Matched::Name
        } else if matched == ffi::SELECTION_PROVIDES {
            Matched::Provide
        } else {
            Matched::Other
        };
        let selection = Selection {
            jobs: selection.as_slice().to_vec(),
            solvables: solvables.as_slice().to_vec(),
            matched,
        };
        // Provider lists keep hidden packages (see `Pool::new`); a request selects only packages
        // that may be installed, as one explicit list when some had to go, like dnf's selectors.
        if selection.solvables.iter().any(|&id| self.is_hidden(id)) {
            let visible: Vec<ffi::Id> = selection
                .solvables
                .iter()
                .copied()
                .filter(|&id| !self.is_hidden(id))
                .collect();
            return Ok(self.one_of(visible, matched));
        }
        Ok(selection)
    }

    /// `selection` widened with `alternatives`: one job to install one package of them all, which
    /// leaves the choice to libsolv's policy (best priority, version, and no package that another
    /// candidate obsoletes).
    pub fn widen(&mut self, selection: Selection, alternatives: &[ffi::Id]) -> Selection {
        let mut solvables = selection.solvables;
        solvables.extend(alternatives);
        self.one_of(solvables, selection.matched)
    }

    /// A selection of one package of `solvables`.
    fn one_of(&self, solvables: Vec<ffi::Id>, matched: Matched) -> Selection {
        if solvables.is_empty() {
            return Selection {
                jobs: Vec::new(),
                solvables,
                matched,
            };
        }
        let mut queue = Queue::new();
        for &id in &solvables {
            queue.push(id);
        }
        // SAFETY: the pool is valid and prepared; the queue holds solvable ids of this pool, and the
        // returned offset into the pool's whatprovides data stays valid while the pool lives.
        let what = unsafe { ffi::pool_queuetowhatprovides(self.ptr(), &mut queue.0) };
        Selection {
            jobs: vec![ffi::SOLVER_SOLVABLE_ONE_OF as i32, what],
            solvables,
            matched,
        }
    }

    /// Of `ids`, per name and architecture, those of the repo with the best priority and, among
    /// them, of the newest version (ties all stay).
    pub fn latest(&self, ids: &[ffi::Id]) -> Vec<ffi::Id> {
        // SAFETY: the ids came from this pool, so they index `solvables`, and every solvable has a
        // repo; pool_evrcmp only reads the pool's strings.
        unsafe {
            let pool = self.ptr();
            let solvable = |id: ffi::Id| &*(*pool).solvables.add(id as usize);
            let better = |a: ffi::Id, b: ffi::Id| -> std::cmp::Ordering {
                let (a, b) = (solvable(a), solvable(b));
                (*a.repo).priority.cmp(&(*b.repo).priority).then_with(|| {
                    ffi::pool_evrcmp(pool, a.evr, b.evr, ffi::EVRCMP_COMPARE as i32).cmp(&0)
                })
            };
            ids.iter()
                .copied()
                .filter(|&id| {
                    let s = solvable(id);
                    ids.iter().all(|&other| {
                        let o = solvable(other);
                        o.name != s.name || o.arch != s.arch || better(other, id).is_le()
                    })
                })
                .collect()
        }
    }

    /// The packages (installed ones too) whose Obsoletes match one of `targets`, as rpm matches them:
    /// against the target's name and version, not its provides. A package never obsoletes its own
    /// name (that is an update); hidden and uninstallable packages do not count.
    pub fn obsoleters(&self, targets: &[ffi::Id]) -> Vec<ffi::Id> {
        let mut found: Vec<ffi::Id> = Vec::new();
        let mut candidates = Queue::new();
        for &target in targets {
            // SAFETY: the pool is prepared (whatprovides exists) and `target` is one of its
            // installable solvables; the queues are initialised and owned here; every id libsolv
            // returns indexes `solvables`.
            unsafe {
                let pool = self.ptr();
                ffi::pool_whatmatchessolvable(
                    pool,
                    ffi::SOLVABLE_OBSOLETES as i32,
                    target,
                    &mut candidates.0,
                    0,
                );
                let target_s = (*pool).solvables.add(target as usize);
                for &candidate in candidates.as_slice() {
                    let s = (*pool).solvables.add(candidate as usize);
                    if (*s).name == (*target_s).name
                        || found.contains(&candidate)
                        || self.is_hidden(candidate)
                    {
                        continue;
                    }
                    // whatmatchessolvable matched the Obsoletes against provides; rpm (and libsolv
                    // without obsoleteusesprovides) wants the name and version. A fresh queue for
                    // each: libsolv appends a solvable's own dependency arrays to what the queue
                    // holds.
                    let mut obsoletes = Queue::new();
                    ffi::solvable_lookup_deparray(
                        s,
                        ffi::SOLVABLE_OBSOLETES as i32,
                        &mut obsoletes.0,
                        0,
                    );
                    let matches = obsoletes
                        .as_slice()
                        .iter()
                        .any(|&dep| self.matches_nevr(target_s, dep));
                    if matches {
                        found.push(candidate);
                    }
                }
            }
        }
        found
    }

    /// Whether `id` has an Obsoletes on the bare name `name` (any version).
    pub fn obsoletes_name(&self, id: ffi::Id, name: &str) -> bool {
        let Ok(name) = CString::new(name) else {
            return false;
        };
        let mut obsoletes = Queue::new();
        // SAFETY: the pool is valid; `id` came from it; the queue is initialised and owned here;
        // a relation id indexes the pool's `rels`.
        unsafe {
            let pool = self.ptr();
            let name = ffi::pool_str2id(pool, name.as_ptr(), 0);
            if name == 0 {
                return false;
            }
            ffi::solvable_lookup_deparray(
                (*pool).solvables.add(id as usize),
                ffi::SOLVABLE_OBSOLETES as i32,
                &mut obsoletes.0,
                0,
            );
            obsoletes
                .as_slice()
                .iter()
                .any(|&dep| match reldep_id(dep) {
                    None => dep == name,
                    Some(rel) => {
                        let rel = &*(*pool).rels.add(rel as usize);
                        // Only plain comparisons (<, =, >, …); rich dependencies name no package.
                        rel.name == name && rel.flags < 8
                    }
                })
        }
    }

    /// libsolv's `pool_match_nevr`: whether dependency `dep` names the package `s` (name, and the
    /// version when it has one).
    ///
    /// # Safety
    /// `s` is a solvable of this pool and `dep` a dependency id of it.
    unsafe fn matches_nevr(&self, s: *mut ffi::Solvable, dep: ffi::Id) -> bool {
        match reldep_id(dep) {
            // SAFETY: guaranteed by the caller.
            None => unsafe { (*s).name == dep },
            // SAFETY: guaranteed by the caller; pool_match_nevr_rel only reads.
            Some(_) => unsafe { ffi::pool_match_nevr_rel(self.ptr(), s, dep) != 0 },
        }
    }
}
