//! The module solve: which builds of the enabled and default module streams can be active together.
//!
//! As libdnf does, every module build becomes a solvable of a pool of its own, named
//! `name:stream:context`, versioned by the build's version, providing `module(name)` and
//! `module(name:stream)`, conflicting with `module(name)` (one stream of a module at a time) and
//! requiring `module(dep:stream)` (or any of several streams, or any stream) for its run-time
//! dependencies; `-stream` becomes a conflict. The platform (`PLATFORM_ID` of os-release) is the one
//! installed solvable. Each wanted stream is a job installing what provides `module(name:stream)`,
//! weak for default streams; the best (newest) build is forced when possible.

use std::collections::{BTreeMap, HashSet};
use std::ffi::CString;

use libsolv_sys as ffi;

use super::{Pool, Queue, cstr_to_string};

/// A module build as the module solve sees it.
pub struct ModuleSolvable<'a> {
    /// `name:stream:context`: builds of one context are versions of one solvable name.
    pub id: String,
    pub name: &'a str,
    pub stream: &'a str,
    pub version: u64,
    pub arch: &'a str,
    /// Run-time dependencies, one map per `dependencies` entry (all of them apply, as in libdnf).
    pub requires: &'a [BTreeMap<String, Vec<String>>],
}

/// A stream to activate: `name:stream`, and whether it may be left out (a default stream).
pub struct ModuleJob {
    pub name_stream: String,
    pub weak: bool,
}

/// What the module solve chose.
pub struct ModuleChoice {
    /// The `name:stream:context` ids of the builds it installs; every version of those is active.
    pub active: Vec<String>,
    /// What stood in the way of the first, strictest attempt (empty when it succeeded).
    pub problems: Vec<String>,
}

impl Pool {
    /// Solves which of `modules` the `jobs` activate on `platform` (name and stream). As libdnf does,
    /// it tries with the newest builds forced, then without, then with every job weak, and reports
    /// the problems of the first attempt.
    pub fn solve_modules(
        arch: &str,
        platform: Option<(&str, &str)>,
        modules: &[ModuleSolvable<'_>],
        jobs: &[ModuleJob],
    ) -> ModuleChoice {
        let mut pool = Pool::new(arch);
        if let Some((name, stream)) = platform {
            let installed = pool.create_repo("@System");
            // SAFETY: the pool and repo are valid and the repo belongs to the pool.
            unsafe { ffi::pool_set_installed(pool.ptr(), installed) };
            pool.add_module(
                installed,
                &ModuleSolvable {
                    id: format!("{name}:{stream}:00000000"),
                    name,
                    stream,
                    version: 0,
                    arch: "noarch",
                    requires: &[],
                },
            );
        }
        let available = pool.create_repo("modules");
        for module in modules {
            pool.add_module(available, module);
        }
        // SAFETY: the pool is valid; every repo was filled.
        unsafe {
            ffi::repo_internalize(available);
            ffi::pool_createwhatprovides(pool.ptr());
        }

        let mut problems = Vec::new();
        for (force_best, all_weak) in [(true, false), (false, false), (false, true)] {
            let mut queue = Queue::new();
            for job in jobs {
                let mut how = ffi::SOLVER_INSTALL | ffi::SOLVER_SOLVABLE_PROVIDES;
                if job.weak || all_weak {
                    how |= ffi::SOLVER_WEAK;
                }
                if force_best {
                    how |= ffi::SOLVER_FORCEBEST;
                }
                queue.push(how as i32);
                queue.push(pool.str_id(&format!("module({})", job.name_stream)));
            }
            match pool.run_module_solve(&mut queue) {
                Ok(active) => return ModuleChoice { active, problems },
                Err(found) if problems.is_empty() => problems = found,
                Err(_) => {}
            }
        }
        ModuleChoice {
            active: Vec::new(),
            problems,
        }
    }

    /// The names of the solvables a solve of `job` installs, or its problems.
    fn run_module_solve(&mut self, job: &mut Queue) -> Result<Vec<String>, Vec<String>> {
        // SAFETY: the solver is created from and freed with this pool; strings are copied out before
        // it is freed; the steps are asked only after a solve without problems.
        unsafe {
            let solver = ffi::solver_create(self.ptr());
            ffi::solver_set_flag(solver, ffi::SOLVER_FLAG_IGNORE_RECOMMENDED as i32, 1);
            let problem_count = ffi::solver_solve(solver, &mut job.0);
            let result = if problem_count > 0 {
                Err((1..=problem_count)
                    .map(|problem| cstr_to_string(ffi::solver_problem2str(solver, problem)))
                    .collect())
            } else {
                let pool = self.ptr();
                Ok(self
                    .transaction_steps(solver)
                    .0
                    .into_iter()
                    .map(|id| {
                        cstr_to_string(ffi::pool_id2str(
                            pool,
                            (*(*pool).solvables.add(id as usize)).name,
                        ))
                    })
                    .collect())
            };
            ffi::solver_free(solver);
            result
        }
    }

    /// Adds `module` to `repo` with its provides, conflicts and requires.
    fn add_module(&mut self, repo: *mut ffi::Repo, module: &ModuleSolvable<'_>) {
        let provides_module = self.str_id(&format!("module({})", module.name));
        let provides_stream = self.str_id(&format!("module({}:{})", module.name, module.stream));
        let mut conflicts = vec![provides_module];
        let mut requires = Vec::new();
        for dependencies in module.requires {
            for (name, streams) in dependencies {
                let (excluded, wanted): (Vec<&String>, Vec<&String>) =
                    streams.iter().partition(|s| s.starts_with('-'));
                for stream in excluded {
                    conflicts.push(self.str_id(&format!("module({name}:{})", &stream[1..])));
                }
                let alternatives: Vec<ffi::Id> = if wanted.is_empty() {
                    vec![self.str_id(&format!("module({name})"))]
                } else {
                    wanted
                        .iter()
                        .map(|stream| self.str_id(&format!("module({name}:{stream})")))
                        .collect()
                };
                let either = alternatives
                    .into_iter()
                    .reduce(|a, b| {
                        // SAFETY: both ids belong to this pool; the relation is created if new.
                        unsafe { ffi::pool_rel2id(self.ptr(), a, b, ffi::REL_OR as i32, 1) }
                    })
                    .expect("at least one alternative");
                requires.push(either);
            }
        }
        let (name, evr, arch) = (
            self.str_id(&module.id),
            self.str_id(&module.version.to_string()),
            self.str_id(module.arch),
        );
        // SAFETY: `repo` belongs to this pool; the new solvable is filled before anything reads it.
        unsafe {
            let id = ffi::repo_add_solvable(repo);
            let solvable = (*self.ptr()).solvables.add(id as usize);
            (*solvable).name = name;
            (*solvable).evr = evr;
            (*solvable).arch = arch;
            for provide in [provides_module, provides_stream] {
                ffi::solvable_add_deparray(solvable, ffi::SOLVABLE_PROVIDES as i32, provide, 0);
            }
            for conflict in conflicts {
                ffi::solvable_add_deparray(solvable, ffi::SOLVABLE_CONFLICTS as i32, conflict, 0);
            }
            for require in requires {
                ffi::solvable_add_deparray(solvable, ffi::SOLVABLE_REQUIRES as i32, require, 0);
            }
        }
    }

    /// The pool's id of `text`, created if new.
    fn str_id(&mut self, text: &str) -> ffi::Id {
        // Metadata from the network may hold a NUL; such a string can name nothing anyway.
        let text = CString::new(text.replace('\0', "")).expect("NULs were removed");
        // SAFETY: the string is NUL-terminated and outlives the call; libsolv copies it.
        unsafe { ffi::pool_str2id(self.ptr(), text.as_ptr(), 1) }
    }
}

/// What module filtering hides, in the pool's terms: see [`Pool::module_hidden`].
pub struct ModuleFilterIds {
    /// (name, evr, arch) string ids of packages that stay.
    pub include: HashSet<(ffi::Id, ffi::Id, ffi::Id)>,
    /// (name, evr, arch) string ids of packages that go.
    pub exclude: HashSet<(ffi::Id, ffi::Id, ffi::Id)>,
    /// Name ids: packages of these names, or providing them, go (unless included).
    pub names: HashSet<ffi::Id>,
    /// Name ids: source packages of these names go (unless included).
    pub source_names: HashSet<ffi::Id>,
}

impl Pool {
    /// The pool's id of `text`, or `None` when the pool has no such string (then nothing in the pool
    /// is named so).
    pub fn existing_id(&self, text: &str) -> Option<ffi::Id> {
        let text = CString::new(text).ok()?;
        // SAFETY: the string is NUL-terminated and outlives the call; create=0 only looks up.
        let id = unsafe { ffi::pool_str2id(self.ptr(), text.as_ptr(), 0) };
        (id != 0).then_some(id)
    }

    /// The packages of the repos (not installed ones, nor those of the repos named in `except`)
    /// that `filter` hides. Compares string ids only, and reads each package's provides in place:
    /// this runs over every package of the repos on every resolution of a modular host.
    pub fn module_hidden(&self, except: &[&str], filter: &ModuleFilterIds) -> Vec<ffi::Id> {
        let (src, nosrc) = (
            self.existing_id("src").unwrap_or(-1),
            self.existing_id("nosrc").unwrap_or(-1),
        );
        // SAFETY: ids 2.. index the pool's `nsolvables` solvables; a slot with no repo is free; a
        // solvable's provides are a zero-terminated run of its repo's `idarraydata` starting at its
        // `provides` offset (0: none); a relation id indexes the pool's `rels`.
        unsafe {
            let pool = self.ptr();
            let skipped: Vec<*mut ffi::Repo> =
                std::slice::from_raw_parts((*pool).repos, (*pool).nrepos as usize)
                    .iter()
                    .copied()
                    .filter(|&r| {
                        !r.is_null() && except.contains(&cstr_to_string((*r).name).as_str())
                    })
                    .collect();
            (2..(*pool).nsolvables)
                .filter(|&id| {
                    let s = &*(*pool).solvables.add(id as usize);
                    if s.repo.is_null() || self.is_installed(id) || skipped.contains(&s.repo) {
                        return false;
                    }
                    let key = (s.name, s.evr, s.arch);
                    if filter.include.contains(&key) {
                        return false;
                    }
                    if filter.exclude.contains(&key)
                        || filter.names.contains(&s.name)
                        || ((s.arch == src || s.arch == nosrc)
                            && filter.source_names.contains(&s.name))
                    {
                        return true;
                    }
                    if s.provides == 0 {
                        return false;
                    }
                    let mut dep = (*s.repo).idarraydata.add(s.provides as usize);
                    while *dep != 0 {
                        let name = match super::reldep_id(*dep) {
                            None => *dep,
                            Some(rel) => (*(*pool).rels.add(rel as usize)).name,
                        };
                        if filter.names.contains(&name) {
                            return true;
                        }
                        dep = dep.add(1);
                    }
                    false
                })
                .collect()
        }
    }
}
