//! The one safe wrapper over libsolv: every `unsafe` block of the solver lives here.
//!
//! A [`Pool`] owns the libsolv pool and everything hanging off it (repos, solvables). It holds raw
//! pointers, so it is neither `Send` nor `Sync`: libsolv objects stay on the thread that made them.
//! Filling it is in `load`, matching requests in `select`, solving in `solve`, and the module
//! solve (a pool of module streams of its own) in `modules`.

mod load;
mod modules;
mod select;
mod solve;

pub use modules::{ModuleChoice, ModuleFilterIds, ModuleJob, ModuleSolvable};
pub use select::{Matched, Selection};
pub use solve::{Problem, ProblemKind, SolveResult};

use std::ffi::{CStr, CString};
use std::path::Path;
use std::ptr::NonNull;

use anyhow::{Context, Result};
use libsolv_sys as ffi;

/// Serialises libsolv's use of librpm (see [`Pool::add_installed_rpmdb`]).
static LIBRPM: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A libsolv pool set up for rpm semantics.
pub struct Pool {
    raw: NonNull<ffi::Pool>,
    /// Solvables the solver must not install (repo `exclude=` / `includepkgs=`, module filtering).
    hidden: std::collections::HashSet<ffi::Id>,
    /// The map `pool->considered` points at while `hidden` is not empty; boxed so it does not move.
    considered: Option<Box<ffi::Map>>,
}

/// A growable list of ids, libsolv's `Queue`, freed on drop.
struct Queue(ffi::Queue);

impl Queue {
    fn new() -> Self {
        let mut queue = ffi::Queue::default();
        // SAFETY: queue_init only initialises the struct it is given.
        unsafe { ffi::queue_init(&mut queue) };
        Queue(queue)
    }

    fn push(&mut self, id: ffi::Id) {
        // SAFETY: the queue was initialised by queue_init; inserting at `count` appends.
        unsafe { ffi::queue_insert(&mut self.0, self.0.count, id) };
    }

    fn as_slice(&self) -> &[ffi::Id] {
        if self.0.count == 0 {
            return &[];
        }
        // SAFETY: `elements` points at `count` initialised ids owned by the queue.
        unsafe { std::slice::from_raw_parts(self.0.elements, self.0.count as usize) }
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: the queue was initialised by queue_init and is freed once.
        unsafe { ffi::queue_free(&mut self.0) };
    }
}

/// One package as the pool knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SolvableInfo {
    pub name: String,
    pub evr: String,
    pub arch: String,
    pub repo: String,
    pub download_size: u64,
    pub install_size: u64,
    pub location: Option<String>,
    /// The package file's checksum from the metadata: algorithm name and hex.
    pub checksum: Option<(String, String)>,
}

impl Pool {
    /// A pool with rpm version and dependency semantics (Debian builds default to deb) for `arch`.
    pub fn new(arch: &str) -> Self {
        let arch = CString::new(arch).expect("an architecture has no NUL");
        // SAFETY: pool_create returns a fresh pool (aborting on allocation failure); the calls after
        // it configure that pool.
        let raw = unsafe {
            let pool = ffi::pool_create();
            ffi::pool_setdisttype(pool, ffi::DISTTYPE_RPM as i32);
            ffi::pool_setarch(pool, arch.as_ptr());
            // As libdnf sets it: hidden packages stay in the provider lists, never installable.
            // libsolv's policy then still compares versions with them, so a hidden newer build
            // of a name disqualifies its visible older one as a provider of a dependency, as in
            // dnf. Request matching leaves them out (`select`).
            ffi::pool_set_flag(pool, ffi::POOL_FLAG_WHATPROVIDESWITHDISABLED as i32, 1);
            pool
        };
        Pool {
            raw: NonNull::new(raw).expect("pool_create never returns NULL"),
            hidden: Default::default(),
            considered: None,
        }
    }

    fn ptr(&self) -> *mut ffi::Pool {
        self.raw.as_ptr()
    }

    /// Whether `id` is a package of the installed (base) repo.
    pub fn is_installed(&self, id: ffi::Id) -> bool {
        // SAFETY: `id` came from this pool, so it indexes `solvables`.
        unsafe {
            let pool = self.ptr();
            let installed = (*pool).installed;
            !installed.is_null() && (*(*pool).solvables.add(id as usize)).repo == installed
        }
    }

    /// The packages of the installed (base) repo.
    pub fn installed_ids(&self) -> Vec<ffi::Id> {
        // SAFETY: ids 2.. index the pool's `nsolvables` solvables; `is_installed` checks the repo.
        let count = unsafe { (*self.ptr()).nsolvables };
        (2..count).filter(|&id| self.is_installed(id)).collect()
    }

    /// Whether `id` is hidden from the solver ([`Pool::hide`]).
    pub fn is_hidden(&self, id: ffi::Id) -> bool {
        self.hidden.contains(&id)
    }

    /// How two `[epoch:]version-release` strings compare, by rpm's rules.
    pub fn evr_cmp(&self, a: &str, b: &str) -> std::cmp::Ordering {
        let (a, b) = (
            CString::new(a).unwrap_or_default(),
            CString::new(b).unwrap_or_default(),
        );
        // SAFETY: both strings are NUL-terminated and outlive the call; the pool is valid.
        let order = unsafe {
            ffi::pool_evrcmp_str(
                self.ptr(),
                a.as_ptr(),
                b.as_ptr(),
                ffi::EVRCMP_COMPARE as i32,
            )
        };
        order.cmp(&0)
    }

    /// The packages the repos offer: base packages and hidden ones left out.
    fn available(&self) -> Vec<ffi::Id> {
        // SAFETY: ids 2.. index the pool's `nsolvables` solvables (0 and 1 are reserved); a slot
        // with no repo is free.
        unsafe {
            let pool = self.ptr();
            (2..(*pool).nsolvables)
                .filter(|&id| {
                    !(*(*pool).solvables.add(id as usize)).repo.is_null()
                        && !self.is_installed(id)
                        && !self.hidden.contains(&id)
                })
                .collect()
        }
    }

    /// The packages the repos offer (base packages and hidden ones left out), with their summary.
    pub fn available_packages(&self) -> Vec<(SolvableInfo, String)> {
        self.available()
            .into_iter()
            .map(|id| {
                // SAFETY: `id` indexes the pool's solvables; the summary is owned by the pool and
                // copied at once.
                let summary = unsafe {
                    let s = (*self.ptr()).solvables.add(id as usize);
                    cstr_to_string(ffi::solvable_lookup_str(s, ffi::SOLVABLE_SUMMARY as i32))
                };
                (self.info(id), summary)
            })
            .collect()
    }

    /// The names of the packages the repos offer (base packages and hidden ones left out), each
    /// once.
    pub fn available_names(&self) -> std::collections::BTreeSet<String> {
        self.available()
            .into_iter()
            // SAFETY: `id` indexes the pool's solvables; the name is owned by the pool, copied.
            .map(|id| unsafe {
                let pool = self.ptr();
                cstr_to_string(ffi::pool_id2str(
                    pool,
                    (*(*pool).solvables.add(id as usize)).name,
                ))
            })
            .collect()
    }

    /// What identifies the package `id` (from [`Pool::select`] or a [`SolveResult`]).
    pub fn info(&self, id: ffi::Id) -> SolvableInfo {
        // SAFETY: `id` came from this pool's selections or transactions, so it indexes `solvables`;
        // the strings returned are owned by the pool and copied at once.
        unsafe {
            let pool = self.ptr();
            let s = (*pool).solvables.add(id as usize);
            let repo = (*s).repo;
            let mut medianr = 0u32;
            let location = ffi::solvable_lookup_location(s, &mut medianr);
            let mut checksum_type: ffi::Id = 0;
            let checksum =
                ffi::solvable_lookup_checksum(s, ffi::SOLVABLE_CHECKSUM as i32, &mut checksum_type);
            SolvableInfo {
                name: cstr_to_string(ffi::pool_id2str(pool, (*s).name)),
                evr: cstr_to_string(ffi::pool_id2str(pool, (*s).evr)),
                arch: cstr_to_string(ffi::pool_id2str(pool, (*s).arch)),
                repo: cstr_to_string((*repo).name),
                download_size: ffi::solvable_lookup_num(s, ffi::SOLVABLE_DOWNLOADSIZE as i32, 0),
                install_size: ffi::solvable_lookup_num(s, ffi::SOLVABLE_INSTALLSIZE as i32, 0),
                location: (!location.is_null()).then(|| cstr_to_string(location)),
                checksum: (!checksum.is_null()).then(|| {
                    let algorithm = cstr_to_string(ffi::solv_chksum_type2str(checksum_type));
                    (algorithm, cstr_to_string(checksum))
                }),
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // SAFETY: the pool was made by pool_create and is freed once, with everything it owns; the
        // considered map is ours, so it is detached first and freed after.
        unsafe {
            (*self.ptr()).considered = std::ptr::null_mut();
            ffi::pool_free(self.ptr());
            if let Some(mut map) = self.considered.take() {
                ffi::map_free(&mut *map);
            }
        }
    }
}

/// The index into the pool's `rels` when `dep` is a relation (libsolv's `ISRELDEP`/`GETRELID`).
fn reldep_id(dep: ffi::Id) -> Option<u32> {
    const RELDEP_BIT: u32 = 0x8000_0000;
    let dep = dep as u32;
    (dep & RELDEP_BIT != 0).then_some(dep ^ RELDEP_BIT)
}

/// Opens a stdio FILE for libsolv's readers and writers.
fn open_stdio(path: &Path, mode: &str) -> Option<*mut libc::FILE> {
    let path = path_cstring(path).ok()?;
    let mode = CString::new(mode).ok()?;
    // SAFETY: both strings are NUL-terminated and outlive the call.
    let file = unsafe { libc::fopen(path.as_ptr(), mode.as_ptr()) };
    (!file.is_null()).then_some(file)
}

fn path_cstring(path: &Path) -> Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes())
        .with_context(|| format!("path {} has a NUL", path.display()))
}

/// Copies a C string owned by libsolv; NULL becomes empty.
///
/// # Safety
/// `ptr` is NULL or points at a NUL-terminated string valid for the duration of the call.
unsafe fn cstr_to_string(ptr: *const std::os::raw::c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: guaranteed by the caller.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}
