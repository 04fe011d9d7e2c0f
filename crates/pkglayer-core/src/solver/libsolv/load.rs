//! Filling the pool: the installed rpmdb, repo metadata (through `.solv` caches), local RPMs.

use std::ffi::CString;
use std::path::Path;

use anyhow::{Result, bail};
use libsolv_sys as ffi;

use super::{LIBRPM, Pool, SolvableInfo, cstr_to_string, open_stdio, path_cstring};

impl Pool {
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

    pub(super) fn create_repo(&mut self, name: &str) -> *mut ffi::Repo {
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
        self.hidden.extend(ids.iter().copied());
    }

    /// Hides what [`Pool::hide`] named and makes provides and file provides searchable; call after
    /// the last repo is added and the last package hidden.
    pub fn prepare(&mut self) {
        // SAFETY: the pool is valid; the considered map is sized for every solvable, owned by self
        // (boxed, so the pointer stays valid) and detached again in Drop before it is freed. It is
        // set first: whatprovides leaves out what it does not consider.
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
}
