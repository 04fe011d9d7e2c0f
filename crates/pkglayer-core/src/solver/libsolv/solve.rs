//! Solving an install job, and what libsolv says when it cannot.

use libsolv_sys as ffi;

use super::{Pool, Queue, Selection, cstr_to_string};

/// A solver answer: the packages to install (solvable ids, base packages left out) and the base
/// packages that go, or problems.
pub enum SolveResult {
    Install {
        install: Vec<ffi::Id>,
        erase: Vec<ffi::Id>,
    },
    Problems(Vec<Problem>),
}

/// One problem libsolv found, in its own sentence, and what its main rule says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The problem as one sentence, naming the packages involved.
    pub text: String,
    /// What kind of problem its main rule (the one the sentence describes) is.
    pub kind: ProblemKind,
    /// The requests whose packages take part in it (as labelled when solving), in request order.
    pub requests: Vec<String>,
}

impl Problem {
    /// The sentence, and the requests whose packages take part in it.
    pub fn describe(&self) -> String {
        match self.requests.as_slice() {
            [] => self.text.clone(),
            requests => format!("{} (requested: {})", self.text, requests.join(", ")),
        }
    }
}

/// The kinds of problem that call for different remedies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// Nothing in the base or the enabled repos provides this dependency (or request).
    NothingProvides(String),
    /// A package conflicts with a base package, or obsoletes or replaces one: the base would change.
    ConflictsWithBase,
    /// Two packages of the transaction conflict with each other (or replace each other).
    Conflict,
    /// A package cannot be installed here: another architecture, or hidden by a repo's `exclude=`.
    NotInstallable,
    /// Anything else (e.g. a dependency only packages of another problem provide).
    Other,
}

/// The selection each job `(how, what)` of a solve comes from, by its index.
type Labels = std::collections::HashMap<(ffi::Id, ffi::Id), usize>;

impl Pool {
    /// Solves: install one package of every selection (each labelled with its request, for
    /// problems to name) and every solvable in `solvables`, erase the installed packages in `erase`,
    /// with every other installed package locked but those in `unlocked` (which a package of
    /// their name may replace).
    pub fn solve_install(
        &mut self,
        selections: &[(&Selection, &str)],
        solvables: &[ffi::Id],
        erase: &[ffi::Id],
        unlocked: &[ffi::Id],
        ignore_weak: bool,
    ) -> SolveResult {
        let mut job = Queue::new();
        for &id in solvables {
            job.push((ffi::SOLVER_INSTALL | ffi::SOLVER_SOLVABLE) as i32);
            job.push(id);
        }
        // Which selection each job (how, what) comes from.
        let mut labels: Labels = Default::default();
        for (index, (selection, _)) in selections.iter().enumerate() {
            for pair in selection.jobs.chunks(2) {
                let how = pair[0] | ffi::SOLVER_INSTALL as i32;
                labels.insert((how, pair[1]), index);
                job.push(how);
                job.push(pair[1]);
            }
        }
        for &id in erase {
            job.push((ffi::SOLVER_ERASE | ffi::SOLVER_SOLVABLE) as i32);
            job.push(id);
        }
        // SAFETY: the pool is valid; `installed` may be NULL when no rpmdb was added.
        let installed = unsafe { (*self.ptr()).installed };
        if !installed.is_null() && erase.is_empty() && unlocked.is_empty() {
            job.push((ffi::SOLVER_LOCK | ffi::SOLVER_SOLVABLE_REPO) as i32);
            // SAFETY: installed is a valid repo of this pool.
            job.push(unsafe { (*installed).repoid });
        } else if !installed.is_null() {
            for id in self.installed_ids() {
                if !erase.contains(&id) && !unlocked.contains(&id) {
                    job.push((ffi::SOLVER_LOCK | ffi::SOLVER_SOLVABLE) as i32);
                    job.push(id);
                }
            }
        }

        // SAFETY: the solver is created from and freed with this pool; problem strings are copied out
        // before the solver is freed; the transaction is freed once.
        unsafe {
            let solver = ffi::solver_create(self.ptr());
            if ignore_weak {
                ffi::solver_set_flag(solver, ffi::SOLVER_FLAG_IGNORE_RECOMMENDED as i32, 1);
            }
            if !unlocked.is_empty() {
                // A replacement may be an older build, or another vendor's.
                ffi::solver_set_flag(solver, ffi::SOLVER_FLAG_ALLOW_DOWNGRADE as i32, 1);
                ffi::solver_set_flag(solver, ffi::SOLVER_FLAG_ALLOW_VENDORCHANGE as i32, 1);
            }
            let problem_count = ffi::solver_solve(solver, &mut job.0);
            let result = if problem_count > 0 {
                let problems = (1..=problem_count)
                    .map(|problem| {
                        let mut found = self.problem(solver, problem);
                        found.requests = Self::problem_requests(solver, problem, &labels)
                            .into_iter()
                            .map(|index| selections[index].1.to_string())
                            .collect();
                        found
                    })
                    .collect();
                SolveResult::Problems(problems)
            } else {
                let (install, erase) = self.transaction_steps(solver);
                SolveResult::Install { install, erase }
            };
            ffi::solver_free(solver);
            result
        }
    }

    /// What the last (successful) solve of `solver` changes: the solvables it installs, and the
    /// installed ones it erases.
    ///
    /// # Safety
    /// `solver` is a live solver of this pool whose last solve found no problem.
    pub(super) unsafe fn transaction_steps(
        &self,
        solver: *mut ffi::Solver,
    ) -> (Vec<ffi::Id>, Vec<ffi::Id>) {
        // SAFETY: per the contract; the transaction is freed once, after its steps are copied.
        unsafe {
            let transaction = ffi::solver_create_transaction(solver);
            let steps = &(*transaction).steps;
            // An empty transaction (every request inactive) may have no element array at all.
            let ids = if steps.count == 0 {
                &[][..]
            } else {
                std::slice::from_raw_parts(steps.elements, steps.count as usize)
            };
            let (erase, install) = ids.iter().copied().partition(|&id| self.is_installed(id));
            ffi::transaction_free(transaction);
            (install, erase)
        }
    }

    /// The selections (indices, by `labels`) whose jobs take part in problem `problem` of `solver`,
    /// sorted.
    ///
    /// # Safety
    /// `solver` is a live solver whose last solve found `problem`.
    unsafe fn problem_requests(
        solver: *mut ffi::Solver,
        problem: ffi::Id,
        labels: &Labels,
    ) -> Vec<usize> {
        let mut rules = Queue::new();
        // SAFETY: per the contract; the queue is initialised and owned here.
        unsafe { ffi::solver_findallproblemrules(solver, problem, &mut rules.0) };
        let mut involved: Vec<usize> = rules
            .as_slice()
            .iter()
            .filter(|&&rule| {
                // SAFETY: `rule` came from this solver.
                unsafe { ffi::solver_ruleclass(solver, rule) == ffi::SOLVER_RULE_JOB }
            })
            .filter_map(|&rule| {
                let mut what = 0;
                // SAFETY: a job rule of this solver has a job.
                let how = unsafe { ffi::solver_rule2job(solver, rule, &mut what) };
                labels.get(&(how, what))
            })
            .copied()
            .collect();
        involved.sort_unstable();
        involved.dedup();
        involved
    }

    /// Problem number `problem` of `solver`: libsolv's sentence for it, and the dependency nothing
    /// provides when its main rule (the one that sentence describes) is of that kind.
    ///
    /// # Safety
    /// `solver` is a live solver of this pool whose last solve found `problem`.
    unsafe fn problem(&self, solver: *mut ffi::Solver, problem: ffi::Id) -> Problem {
        // SAFETY: per the contract; the strings are copied before the solver goes.
        unsafe {
            let mut text = cstr_to_string(ffi::solver_problem2str(solver, problem));
            let rule = ffi::solver_findproblemrule(solver, problem);
            let (mut source, mut target, mut dep) = (0, 0, 0);
            let rule_kind = ffi::solver_ruleinfo(solver, rule, &mut source, &mut target, &mut dep);
            let involves_base = (source > 0 && self.is_installed(source))
                || (target > 0 && self.is_installed(target));
            let kind = match rule_kind {
                ffi::SOLVER_RULE_PKG_NOTHING_PROVIDES_DEP
                | ffi::SOLVER_RULE_JOB_NOTHING_PROVIDES_DEP => {
                    ProblemKind::NothingProvides(cstr_to_string(ffi::pool_dep2str(self.ptr(), dep)))
                }
                ffi::SOLVER_RULE_PKG_NOT_INSTALLABLE => {
                    // libsolv's word for a hidden package is "disabled"; say why it may be.
                    if source > 0 && self.is_hidden(source) {
                        text = text.replace(
                            " is disabled",
                            " is hidden (a repo's exclude= or includepkgs=, or module filtering)",
                        );
                    }
                    ProblemKind::NotInstallable
                }
                ffi::SOLVER_RULE_PKG_CONFLICTS
                | ffi::SOLVER_RULE_PKG_OBSOLETES
                | ffi::SOLVER_RULE_PKG_INSTALLED_OBSOLETES
                | ffi::SOLVER_RULE_PKG_IMPLICIT_OBSOLETES
                | ffi::SOLVER_RULE_PKG_SAME_NAME => {
                    if involves_base {
                        ProblemKind::ConflictsWithBase
                    } else {
                        ProblemKind::Conflict
                    }
                }
                _ => ProblemKind::Other,
            };
            Problem {
                text,
                kind,
                requests: Vec::new(),
            }
        }
    }
}
