//! The one safe wrapper over libsolv: every `unsafe` block of the solver lives here.
//!
//! A [`Pool`] owns the libsolv pool and everything hanging off it (repos, solvables). It holds raw
//! pointers, so it is neither `Send` nor `Sync`: libsolv objects stay on the thread that made them.

use std::ffi::{CStr, CString};
use std::path::Path;
use std::ptr::NonNull;

use anyhow::{Context, Result, bail};
use libsolv_sys as ffi;

/// Serialises libsolv's use of librpm (see [`Pool::add_installed_rpmdb`]).
static LIBRPM: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A libsolv pool set up for rpm semantics.
pub struct Pool {
    raw: NonNull<ffi::Pool>,
    /// Solvables the solver must not see (repo `exclude=` / `includepkgs=`).
    hidden: Vec<ffi::Id>,
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

/// A solver answer: the packages to install (solvable ids, base packages left out), or problems.
pub enum SolveResult {
    Install(Vec<ffi::Id>),
    Problems(Vec<Problem>),
}

/// One problem libsolv found, in its own sentence, and what its main rule says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The problem as one sentence, naming the packages involved.
    pub text: String,
    /// The dependency nothing provides, when that is the problem.
    pub nothing_provides: Option<String>,
}

/// What a request selects, from [`Pool::select`] (and maybe [`Pool::widen`]).
#[derive(Debug, Clone)]
pub struct Selection {
    /// libsolv job pairs (how, what), without the action bits.
    jobs: Vec<ffi::Id>,
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
    /// A pool with rpm version and dependency semantics (Debian builds default to deb) for `arch`.
    pub fn new(arch: &str) -> Self {
        let arch = CString::new(arch).expect("an architecture has no NUL");
        // SAFETY: pool_create returns a fresh pool (aborting on allocation failure); the calls after
        // it configure that pool.
        let raw = unsafe {
            let pool = ffi::pool_create();
            ffi::pool_setdisttype(pool, ffi::DISTTYPE_RPM as i32);
            ffi::pool_setarch(pool, arch.as_ptr());
            pool
        };
        Pool {
            raw: NonNull::new(raw).expect("pool_create never returns NULL"),
            hidden: Vec::new(),
            considered: None,
        }
    }

    fn ptr(&self) -> *mut ffi::Pool {
        self.raw.as_ptr()
    }

    /// Adds the rpm database under `root` (at the tree's dbpath) as the installed repo. With
    /// `solv_cache`, reads that instead when it exists, and writes it after reading the rpmdb.
    pub fn add_installed_rpmdb(&mut self, root: &Path, solv_cache: Option<&Path>) -> Result<()> {
        let repo = self.create_repo("@System");
        // SAFETY: the pool and repo are valid; pool_set_installed takes a repo of this pool.
        unsafe { ffi::pool_set_installed(self.ptr(), repo) };
        if solv_cache.is_some_and(|cache| self.read_solv(repo, cache)) {
            return Ok(());
        }
        let root_c = path_cstring(root)?;
        // libsolv reads the rpmdb through librpm, whose configuration is process-global: one reader
        // at a time, whichever pool it is for.
        let _librpm = LIBRPM
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // SAFETY: the root string outlives the calls; libsolv copies it and we reset it after.
        let ok = unsafe {
            ffi::pool_set_rootdir(self.ptr(), root_c.as_ptr());
            let ok =
                ffi::repo_add_rpmdb(repo, std::ptr::null_mut(), ffi::REPO_USE_ROOTDIR as i32) == 0;
            ffi::pool_set_rootdir(self.ptr(), std::ptr::null());
            ok
        };
        if !ok {
            bail!(
                "reading the rpm database under {}: {}",
                root.display(),
                self.last_error()
            );
        }
        if let Some(cache) = solv_cache {
            self.write_solv(repo, cache);
        }
        Ok(())
    }

    /// Adds an rpm-md repo from its (possibly compressed) primary and filelists files. `priority` and
    /// `subpriority` follow libsolv (higher wins). With `solv_cache`, as for the rpmdb.
    pub fn add_rpmmd(
        &mut self,
        name: &str,
        primary: &Path,
        filelists: Option<&Path>,
        (priority, subpriority): (i32, i32),
        solv_cache: Option<&Path>,
    ) -> Result<()> {
        let repo = self.create_repo(name);
        // SAFETY: the repo is valid and owned by the pool.
        unsafe {
            (*repo).priority = priority;
            (*repo).subpriority = subpriority;
        }
        if solv_cache.is_some_and(|cache| self.read_solv(repo, cache)) {
            return Ok(());
        }
        self.read_rpmmd(repo, primary, 0)?;
        if let Some(filelists) = filelists {
            self.read_rpmmd(repo, filelists, ffi::REPO_EXTEND_SOLVABLES as i32)?;
        }
        // SAFETY: the repo is valid; internalize makes the added data searchable.
        unsafe { ffi::repo_internalize(repo) };
        if let Some(cache) = solv_cache {
            self.write_solv(repo, cache);
        }
        Ok(())
    }

    /// Adds RPM files (a header is enough) as a repo of their own; returns their solvable ids.
    pub fn add_rpm_files(&mut self, name: &str, paths: &[&Path]) -> Result<Vec<ffi::Id>> {
        let repo = self.create_repo(name);
        let mut ids = Vec::with_capacity(paths.len());
        for path in paths {
            let path_c = path_cstring(path)?;
            // SAFETY: repo is valid; libsolv reads the file and returns 0 on failure. Adding without
            // internalizing until the end is allowed with REPO_NO_INTERNALIZE.
            let id = unsafe {
                ffi::repo_add_rpm(repo, path_c.as_ptr(), ffi::REPO_NO_INTERNALIZE as i32)
            };
            if id == 0 {
                bail!(
                    "cannot read the RPM header of {}: {}",
                    path.display(),
                    self.last_error()
                );
            }
            ids.push(id);
        }
        // SAFETY: the repo is valid.
        unsafe { ffi::repo_internalize(repo) };
        Ok(ids)
    }

    fn create_repo(&mut self, name: &str) -> *mut ffi::Repo {
        let name = CString::new(name).expect("repo ids have no NUL");
        // SAFETY: the pool is valid; the repo belongs to it (libsolv copies the name).
        unsafe { ffi::repo_create(self.ptr(), name.as_ptr()) }
    }

    /// Loads a `.solv` file into the empty `repo`; false (and the repo left empty) if it cannot.
    fn read_solv(&mut self, repo: *mut ffi::Repo, path: &Path) -> bool {
        let Some(file) = open_stdio(path, "r") else {
            return false;
        };
        // SAFETY: repo and file are valid; the file is closed once; a failed load is emptied out.
        unsafe {
            let ok = ffi::repo_add_solv(repo, file.cast(), 0) == 0;
            libc::fclose(file);
            if !ok {
                tracing::debug!(
                    "ignoring unreadable solv cache {}: {}",
                    path.display(),
                    self.last_error()
                );
                ffi::repo_empty(repo, 1);
            }
            ok
        }
    }

    /// Writes `repo` as a `.solv` file (via a temporary name); a failure only costs speed next time.
    fn write_solv(&mut self, repo: *mut ffi::Repo, path: &Path) {
        let partial = path.with_extension("solv.partial");
        let Some(file) = open_stdio(&partial, "w") else {
            tracing::debug!("cannot write solv cache {}", partial.display());
            return;
        };
        // SAFETY: repo and file are valid; the file is closed once.
        let ok = unsafe {
            let ok = ffi::repo_write(repo, file.cast()) == 0;
            libc::fclose(file) == 0 && ok
        };
        if !ok || std::fs::rename(&partial, path).is_err() {
            tracing::debug!("cannot write solv cache {}", path.display());
            let _ = std::fs::remove_file(&partial);
        }
    }

    fn read_rpmmd(&mut self, repo: *mut ffi::Repo, path: &Path, flags: i32) -> Result<()> {
        let path_c = path_cstring(path)?;
        let mode = CString::new("r").unwrap();
        // SAFETY: solv_xfopen opens (and decompresses by extension) the file, or returns NULL;
        // the FILE is closed exactly once below.
        let file = unsafe { ffi::solv_xfopen(path_c.as_ptr(), mode.as_ptr()) };
        if file.is_null() {
            bail!("cannot open {}", path.display());
        }
        // SAFETY: repo and file are valid; libsolv reads the file to its end.
        let status = unsafe { ffi::repo_add_rpmmd(repo, file, std::ptr::null(), flags) };
        // SAFETY: `file` came from solv_xfopen (a stdio FILE) and is not used after this.
        unsafe { libc::fclose(file.cast()) };
        if status != 0 {
            bail!("parsing {}: {}", path.display(), self.last_error());
        }
        Ok(())
    }

    fn last_error(&self) -> String {
        // SAFETY: pool_errstr returns a string owned by the pool, valid until the next error.
        unsafe { cstr_to_string(ffi::pool_errstr(self.ptr())) }
    }

    /// The solvables of the repo named `name`, with what identifies them.
    pub fn repo_solvables(&self, name: &str) -> Vec<(ffi::Id, SolvableInfo)> {
        // SAFETY: the pool's repo array has `nrepos` slots (some NULL); each repo's solvables lie in
        // [start, end) of the pool's solvables, where a solvable belongs to it if its repo matches.
        unsafe {
            let pool = self.ptr();
            let repos = std::slice::from_raw_parts((*pool).repos, (*pool).nrepos as usize);
            let Some(&repo) = repos
                .iter()
                .find(|&&r| !r.is_null() && cstr_to_string((*r).name) == name)
            else {
                return Vec::new();
            };
            ((*repo).start..(*repo).end)
                .filter(|&id| (*(*pool).solvables.add(id as usize)).repo == repo)
                .map(|id| (id, self.info(id)))
                .collect()
        }
    }

    /// Keeps these solvables away from the solver and from request matching.
    pub fn hide(&mut self, ids: &[ffi::Id]) {
        self.hidden.extend_from_slice(ids);
    }

    /// Makes provides and file provides searchable; call after the last repo is added.
    pub fn prepare(&mut self) {
        // SAFETY: the pool is valid; the considered map is sized for every solvable, owned by self
        // (boxed, so the pointer stays valid) and detached again in Drop before it is freed.
        unsafe {
            let pool = self.ptr();
            if !self.hidden.is_empty() {
                let mut map = self.considered.take().unwrap_or_default();
                if !map.map.is_null() {
                    ffi::map_free(&mut *map);
                }
                ffi::map_init(&mut *map, (*pool).nsolvables);
                std::ptr::write_bytes(map.map, 0xff, map.size as usize);
                for &id in &self.hidden {
                    *map.map.add((id >> 3) as usize) &= !(1u8 << (id & 7));
                }
                (*pool).considered = &mut *map;
                self.considered = Some(map);
            }
            ffi::pool_addfileprovides(pool);
            ffi::pool_createwhatprovides(pool);
        }
    }

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
        Ok(Selection {
            jobs: selection.as_slice().to_vec(),
            solvables: solvables.as_slice().to_vec(),
            matched,
        })
    }

    /// `selection` widened with `alternatives`: one job to install one package of them all, which
    /// leaves the choice to libsolv's policy (best priority, version, and no package that another
    /// candidate obsoletes).
    pub fn widen(&mut self, selection: Selection, alternatives: &[ffi::Id]) -> Selection {
        let mut solvables = selection.solvables;
        solvables.extend(alternatives);
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
            matched: selection.matched,
        }
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
        let mut obsoletes = Queue::new();
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
                    if (*s).name == (*target_s).name || found.contains(&candidate) {
                        continue;
                    }
                    // whatmatchessolvable matched the Obsoletes against provides; rpm (and libsolv
                    // without obsoleteusesprovides) wants the name and version.
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

    /// Solves: install one package of every selection and every solvable in `solvables`, with every
    /// installed package locked.
    pub fn solve_install(
        &mut self,
        selections: &[&Selection],
        solvables: &[ffi::Id],
        ignore_weak: bool,
    ) -> SolveResult {
        let mut job = Queue::new();
        for &id in solvables {
            job.push((ffi::SOLVER_INSTALL | ffi::SOLVER_SOLVABLE) as i32);
            job.push(id);
        }
        for selection in selections {
            for pair in selection.jobs.chunks(2) {
                job.push(pair[0] | ffi::SOLVER_INSTALL as i32);
                job.push(pair[1]);
            }
        }
        // SAFETY: the pool is valid; `installed` may be NULL when no rpmdb was added.
        let installed = unsafe { (*self.ptr()).installed };
        if !installed.is_null() {
            job.push((ffi::SOLVER_LOCK | ffi::SOLVER_SOLVABLE_REPO) as i32);
            // SAFETY: installed is a valid repo of this pool.
            job.push(unsafe { (*installed).repoid });
        }

        // SAFETY: the solver is created from and freed with this pool; problem strings are copied out
        // before the solver is freed; the transaction is freed once.
        unsafe {
            let solver = ffi::solver_create(self.ptr());
            if ignore_weak {
                ffi::solver_set_flag(solver, ffi::SOLVER_FLAG_IGNORE_RECOMMENDED as i32, 1);
            }
            let problem_count = ffi::solver_solve(solver, &mut job.0);
            let result = if problem_count > 0 {
                let problems = (1..=problem_count)
                    .map(|problem| self.problem(solver, problem))
                    .collect();
                SolveResult::Problems(problems)
            } else {
                let transaction = ffi::solver_create_transaction(solver);
                let steps = &(*transaction).steps;
                // An empty transaction (every request inactive) may have no element array at all.
                let ids = if steps.count == 0 {
                    &[][..]
                } else {
                    std::slice::from_raw_parts(steps.elements, steps.count as usize)
                };
                let install = ids
                    .iter()
                    .copied()
                    .filter(|&id| !self.is_installed(id))
                    .collect();
                ffi::transaction_free(transaction);
                SolveResult::Install(install)
            };
            ffi::solver_free(solver);
            result
        }
    }

    /// Problem number `problem` of `solver`: libsolv's sentence for it, and the dependency nothing
    /// provides when its main rule (the one that sentence describes) is of that kind.
    ///
    /// # Safety
    /// `solver` is a live solver of this pool whose last solve found `problem`.
    unsafe fn problem(&self, solver: *mut ffi::Solver, problem: ffi::Id) -> Problem {
        // SAFETY: per the contract; the strings are copied before the solver goes.
        unsafe {
            let text = cstr_to_string(ffi::solver_problem2str(solver, problem));
            let rule = ffi::solver_findproblemrule(solver, problem);
            let (mut source, mut target, mut dep) = (0, 0, 0);
            let kind = ffi::solver_ruleinfo(solver, rule, &mut source, &mut target, &mut dep);
            let nothing_provides = matches!(
                kind,
                ffi::SOLVER_RULE_PKG_NOTHING_PROVIDES_DEP
                    | ffi::SOLVER_RULE_JOB_NOTHING_PROVIDES_DEP
            )
            .then(|| cstr_to_string(ffi::pool_dep2str(self.ptr(), dep)));
            Problem {
                text,
                nothing_provides,
            }
        }
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
