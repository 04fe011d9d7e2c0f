//! A host's life, at random: a seeded sequence of operations on one sysroot — install (also
//! `--download-only` and `-C`), uninstall, upgrade (also `--download-only` and `--check`), rollback,
//! cleanup, two installs at once, installs and upgrades killed at a random failpoint, the vendor
//! publishing bases that absorb and drop layered packages, the repo publishing and dropping
//! packages. After every step the real tools are held against a model (`support::model`) of what
//! each deployment must be: `ostree admin status` (deployments and their order), each origin's
//! `requested=`, `rpm -qa` in each deployment (exactly the base's packages plus the active requests
//! and their dependency, at the repo's version of the day), each deployment's base commit still in
//! the repo, `ostree fsck`; and the repo's objects stay within a bound.
//!
//! CI runs 25 steps with seed 1. The long run, with a seed of your choice:
//!
//! ```sh
//! PKGLAYER_LIFECYCLE_STEPS=1000 PKGLAYER_LIFECYCLE_SEED=N scripts/test --test lifecycle
//! ```
//!
//! A failure prints the seed and every step so far; the same seed replays the same steps (which of
//! two concurrent installs finishes first is up to the machine, and the steps after one may differ).
//! Needs the `failpoints` feature (`scripts/test` enables it).

#![cfg(feature = "failpoints")]

use std::collections::BTreeSet;
use std::fmt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Output;

mod support;

use pkglayer_core::layout::CacheFolder;
use pkglayer_testkit::{base_ref, create_repo, require_root};
use support::host::RepoHost;
use support::model::{Base, Deployment, Model, Outcome, RepoPackage, Rng, SCRIPTED, Step, choose};
use support::said;

const DEFAULT_SEED: u64 = 1;
const DEFAULT_STEPS: usize = 25;
/// The repo's objects may grow to this many times what they hold after [`SIZE_BASELINE_STEP`]:
/// what the deployments no longer use must go, or a host fills its disk over the years.
const SIZE_FACTOR: u64 = 3;
const SIZE_BASELINE_STEP: usize = 5;

/// What a step must do to the deployments.
enum Expect {
    /// Exit status 1; nothing changes.
    Refused(String),
    /// This exit status; nothing changes.
    Unchanged(i32),
    /// Exit status 0, and this is the new default; the old one is its rollback.
    Deploys(Deployment),
    /// Either of `Deploys` and `Refused`: `-C` with packages downloaded but not imported, which
    /// may or may not count as cached.
    DeploysOrRefused(Deployment),
    /// Exit status 0; the rollback deployment is the default.
    RollsBack,
    /// Exit status 0; only the default deployment is left.
    DropsRollback,
}

impl From<Outcome> for Expect {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Refused(why) => Expect::Refused(why),
            Outcome::Same => Expect::Unchanged(0),
            Outcome::New(deployment) => Expect::Deploys(deployment),
        }
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Expect::Refused(why) => write!(f, "exit 1: {why}"),
            Expect::Unchanged(code) => write!(f, "exit {code}, the deployments unchanged"),
            Expect::Deploys(d) => write!(
                f,
                "exit 0, a new default on base {} requesting {:?}",
                d.base, d.requested
            ),
            Expect::DeploysOrRefused(d) => write!(
                f,
                "exit 1, or exit 0 and a new default on base {} requesting {:?}",
                d.base, d.requested
            ),
            Expect::RollsBack => write!(f, "exit 0, the rollback deployment the default"),
            Expect::DropsRollback => write!(f, "exit 0, the rollback deployment gone"),
        }
    }
}

/// The host, its model, and the steps so far.
struct Life {
    host: RepoHost,
    model: Model,
    trail: Vec<String>,
}

impl Life {
    fn new() -> Self {
        let host = RepoHost::new(&Base::packages(1, &BTreeSet::new()), |_| Vec::new());
        let status = host.host.sysroot.admin_status().unwrap();
        let model = Model::new(&host.host.base_v1, &id_of(&status[0]));
        // Served, not fetched: pkglayer has no metadata until its first operation that asks.
        create_repo(
            &host.host.dir().join("www/repo"),
            &model.repo_packages(),
            "gz",
        )
        .unwrap();
        Life {
            host,
            model,
            trail: Vec::new(),
        }
    }

    fn pkglayer(&self, args: &[&str]) -> Output {
        self.host.pkglayer(args)
    }

    /// Runs `step`; returns what came of it.
    fn run(&mut self, step: &Step) -> Result<String, String> {
        let model = &self.model;
        let (args, expect): (Vec<&str>, Expect) = match step {
            Step::Install(name) => (vec!["install", name], model.install(&[name]).into()),
            Step::DownloadOnly(name) => {
                let expect = match model.install(&[name]) {
                    Outcome::Refused(why) => Expect::Refused(why),
                    _ => Expect::Unchanged(0),
                };
                (vec!["install", "--download-only", name], expect)
            }
            Step::Uninstall(name) => (vec!["uninstall", name], model.uninstall(Some(name)).into()),
            Step::UninstallAll => (vec!["uninstall", "--all"], model.uninstall(None).into()),
            Step::Upgrade => (vec!["upgrade"], model.upgrade().into()),
            Step::UpgradeDownloadOnly => (vec!["upgrade", "--download-only"], Expect::Unchanged(0)),
            // rpm-ostree's convention: 77 when there is nothing to upgrade to.
            Step::UpgradeCheck => {
                let code = match model.upgrade() {
                    Outcome::New(_) => 0,
                    Outcome::Same => 77,
                    Outcome::Refused(why) => unreachable!("requests stay resolvable: {why}"),
                };
                (vec!["upgrade", "--check"], Expect::Unchanged(code))
            }
            Step::Rollback if model.deployments.len() > 1 => (vec!["rollback"], Expect::RollsBack),
            Step::Rollback => (
                vec!["rollback"],
                Expect::Refused("no rollback deployment".into()),
            ),
            Step::CleanupRollback => (vec!["cleanup", "--rollback"], Expect::DropsRollback),
            // Offline, nothing is pending.
            Step::CleanupPending => (vec!["cleanup", "--pending"], Expect::Unchanged(0)),
            Step::CleanupCache => (vec!["cleanup", "--cache"], Expect::Unchanged(0)),
            Step::CacheOnly(name) => return self.install_cache_only(name),
            Step::Concurrent(a, b) => return self.install_concurrently(a, b),
            Step::Killed { point, install } => return self.killed(point, *install),
            Step::PublishBase(absorbed) => return self.publish_base(absorbed),
            Step::RepoUpdate(name) => {
                let version = self.model.publish(name);
                self.serve_repo()?;
                return Ok(format!("{name} {version}.0-1 served"));
            }
            Step::RepoDrop(name) => {
                self.model.repo.remove(name);
                self.serve_repo()?;
                return Ok(format!("{name} no longer served"));
            }
        };
        let output = self.pkglayer(&args);
        self.settle(&output, expect)
    }

    /// An install of `install` (or an upgrade) killed at `point`: nothing changes; or, when the
    /// operation does not pass `point`, it does what it always does.
    fn killed(&mut self, point: &str, install: Option<&str>) -> Result<String, String> {
        let (args, expect) = match install {
            Some(name) => (vec!["install", name], self.model.install(&[name])),
            None => (vec!["upgrade"], self.model.upgrade()),
        };
        let output = (self.host.command(&args))
            .env("PKGLAYER_FAILPOINT", point)
            .output();
        if output.status.signal() != Some(9) {
            let result = self.settle(&output, expect.into())?;
            return Ok(format!("not killed ({point} not reached): {result}"));
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !stderr.contains(&format!("failpoint {point}: killing")) {
            return Err(format!("killed by SIGKILL, but not at {point}: {stderr}"));
        }
        Ok(format!("killed at {point}"))
    }

    /// The vendor publishes the next base, shipping `absorbed` of the pool itself; nothing deploys
    /// it before an upgrade.
    fn publish_base(&mut self, absorbed: &BTreeSet<&'static str>) -> Result<String, String> {
        let version = self.model.newest_base().version + 1;
        let packages = Base::packages(version, absorbed);
        let commit = (self.host.host.vendor)
            .publish(&base_ref(), &version.to_string(), &packages)
            .map_err(|err| format!("publishing base {version}: {err:#}"))?;
        self.model.bases.push(Base {
            version,
            commit: commit.clone(),
            absorbed: absorbed.clone(),
        });
        Ok(format!("base {version} is {commit}"))
    }

    /// `install -C NAME`: deploys when the metadata and every package of the new layer are cached,
    /// else fails with exit status 1; never asks the server for anything.
    fn install_cache_only(&mut self, name: &'static str) -> Result<String, String> {
        let expect = match self.model.install(&[name]) {
            Outcome::New(next) => match self.cache_lacks(&next.layered)? {
                (missing, _) if !missing.is_empty() => {
                    Expect::Refused(format!("not in the package cache: {missing:?}"))
                }
                (_, downloaded) if !downloaded.is_empty() => Expect::DeploysOrRefused(next),
                _ => Expect::Deploys(next),
            },
            outcome => outcome.into(),
        };
        let asked = self.host.server.requests().len();
        let output = self.pkglayer(&["install", "-C", name]);
        let requests = &self.host.server.requests()[asked..];
        if !requests.is_empty() {
            return Err(format!("install -C made HTTP requests: {requests:?}"));
        }
        self.settle(&output, expect)
    }

    /// What the package cache lacks of `packages`: those neither imported (a cache ref) nor
    /// downloaded (all of them while no metadata is cached), and those only downloaded, by an
    /// operation killed before it imported them.
    fn cache_lacks(
        &self,
        packages: &BTreeSet<RepoPackage>,
    ) -> Result<(Vec<String>, Vec<String>), String> {
        let sysroot = &self.host.host.sysroot;
        let cache = support::cache(&sysroot.path);
        let metadata = std::fs::read_dir(cache.folder(CacheFolder::RepoMetadata))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("test-"));
        let refs = sysroot
            .ostree(&["refs"])
            .map_err(|err| format!("{err:#}"))?;
        let refs: BTreeSet<&str> = refs.lines().collect();
        let (mut missing, mut downloaded) = (Vec::new(), Vec::new());
        for package in packages {
            let file = cache
                .folder(CacheFolder::Downloads)
                .join(format!("{}.rpm", package.nevra()));
            if !metadata || !(refs.contains(package.cache_ref().as_str()) || file.is_file()) {
                missing.push(package.nevra());
            } else if !refs.contains(package.cache_ref().as_str()) {
                downloaded.push(package.nevra());
            }
        }
        Ok((missing, downloaded))
    }

    /// Two installs at once: both succeed, one after the other (the second waits for the sysroot
    /// lock and plans on what the first deployed), so the default requests both and the rollback
    /// one of them.
    fn install_concurrently(&mut self, a: &'static str, b: &'static str) -> Result<String, String> {
        let spawn = |name: &str| self.host.command(&["install", name]).spawn();
        let (first, second) = (spawn(a), spawn(b));
        for (name, child) in [(a, first), (b, second)] {
            let output = child.wait_with_output().unwrap();
            if !output.status.success() {
                return Err(format!(
                    "install {name} (concurrent) failed: {}",
                    said(&output)
                ));
            }
        }
        let sysroot = &self.host.host.sysroot;
        let status = sysroot.admin_status().map_err(|err| format!("{err:#}"))?;
        let requested = |index: usize| {
            sysroot
                .origin(index)
                .map(|origin| requested_in(&origin))
                .unwrap_or_default()
        };
        let Outcome::New(both) = self.model.install(&[a, b]) else {
            unreachable!("{a} and {b} are installable");
        };
        if status.len() != 2 {
            return Err(format!(
                "two concurrent installs left {} deployments",
                status.len()
            ));
        }
        if requested(0) != both.requested {
            return Err(format!(
                "after two concurrent installs the default requests {:?}, expected {:?} (both)",
                requested(0),
                both.requested
            ));
        }
        let earlier = [a, b]
            .into_iter()
            .find_map(|name| match self.model.install(&[name]) {
                Outcome::New(d) if d.requested == requested(1) => Some((name, d)),
                _ => None,
            });
        let Some((earlier, mut deployment)) = earlier else {
            return Err(format!(
                "after two concurrent installs the rollback requests {:?}: neither install alone",
                requested(1)
            ));
        };
        deployment.id = id_of(&status[1]);
        self.model.deploy(deployment);
        let Outcome::New(mut both) = self.model.install(&[if earlier == a { b } else { a }]) else {
            unreachable!("the later install adds a package");
        };
        both.id = id_of(&status[0]);
        self.model.deploy(both);
        Ok(format!("{earlier} deployed first"))
    }

    /// Checks `output` against `expect` and moves the model on.
    fn settle(&mut self, output: &Output, expect: Expect) -> Result<String, String> {
        let code = output.status.code();
        let wanted = match &expect {
            Expect::Refused(_) => 1,
            Expect::DeploysOrRefused(_) if code == Some(1) => 1,
            Expect::Unchanged(code) => *code,
            _ => 0,
        };
        if code != Some(wanted) {
            return Err(format!("expected {expect}; got {}", said(output)));
        }
        let deployments = &mut self.model.deployments;
        match expect {
            Expect::DeploysOrRefused(_) if code == Some(1) => Ok("refused".into()),
            Expect::Deploys(mut next) | Expect::DeploysOrRefused(mut next) => {
                let status = self.host.host.sysroot.admin_status();
                let id = id_of(&status.map_err(|err| format!("{err:#}"))?[0]);
                if id == deployments[0].id {
                    return Err(format!(
                        "expected {}; exit 0 but nothing was deployed",
                        Expect::Deploys(next)
                    ));
                }
                next.id = id.clone();
                self.model.deploy(next);
                Ok(format!("deployed {id}"))
            }
            Expect::RollsBack => {
                deployments.swap(0, 1);
                Ok("rolled back".into())
            }
            Expect::DropsRollback => {
                deployments.truncate(1);
                Ok("no rollback deployment".into())
            }
            Expect::Refused(why) => Ok(format!("refused ({why})")),
            Expect::Unchanged(code) => Ok(format!("exit {code}")),
        }
    }

    /// Serves the model's repo, and has pkglayer fetch its metadata at once: an install reuses
    /// metadata while it is fresh, and the model has every operation see what the repo serves.
    fn serve_repo(&self) -> Result<(), String> {
        let dir = self.host.host.dir().join("www/repo");
        let _ = std::fs::remove_dir_all(dir.join("Packages"));
        create_repo(&dir, &self.model.repo_packages(), "gz").map_err(|err| format!("{err:#}"))?;
        let output = self.pkglayer(&["refresh-md", "--force"]);
        if !output.status.success() {
            return Err(format!("refresh-md --force failed: {}", said(&output)));
        }
        Ok(())
    }

    /// Holds the real tools' view of every deployment against the model.
    fn check(&self) -> Result<(), String> {
        let sysroot = &self.host.host.sysroot;
        let status = sysroot.admin_status().map_err(|err| format!("{err:#}"))?;
        let ids: Vec<String> = status.iter().map(id_of).collect();
        let expected: Vec<&str> = self
            .model
            .deployments
            .iter()
            .map(|d| d.id.as_str())
            .collect();
        if ids != expected {
            return Err(format!(
                "ostree admin status lists {ids:?}, expected {expected:?} (default first)"
            ));
        }
        for (index, (entry, deployment)) in status.iter().zip(&self.model.deployments).enumerate() {
            let what = format!(
                "deployment {index} ({}, base {}, requested {:?})",
                deployment.id, deployment.base, deployment.requested
            );
            let base = self.model.base(deployment.base);
            if entry.version.as_deref() != Some(base.version.to_string().as_str()) {
                return Err(format!(
                    "{what}: ostree admin status says version {:?}",
                    entry.version
                ));
            }
            let origin = sysroot.origin(index).map_err(|err| format!("{err:#}"))?;
            if requested_in(&origin) != deployment.requested {
                return Err(format!("{what}: its origin says otherwise:\n{origin}"));
            }
            let dir = sysroot.deployment_dir(entry);
            let rpmdb: BTreeSet<String> = (sysroot.rpm_qa(&dir))
                .map_err(|err| format!("{what}: {err:#}"))?
                .into_iter()
                .collect();
            let wanted = self.model.rpmdb(deployment);
            if rpmdb != wanted {
                return Err(format!(
                    "{what}: rpm -qa lacks {:?} and has {:?} besides",
                    wanted.difference(&rpmdb).collect::<Vec<_>>(),
                    rpmdb.difference(&wanted).collect::<Vec<_>>()
                ));
            }
            let scripted = deployment.layered.iter().any(|p| p.name == SCRIPTED.0);
            if scripted && !dir.join(SCRIPTED.1).is_file() {
                return Err(format!(
                    "{what}: the %post of {} left no {}",
                    SCRIPTED.0, SCRIPTED.1
                ));
            }
            self.check_base(&what, &entry.checksum, deployment, base)?;
        }
        (sysroot.ostree(&["fsck", "--quiet"])).map_err(|err| format!("ostree fsck: {err:#}"))?;
        Ok(())
    }

    /// A plain deployment is its base commit; a layered one names it in `pkglayer.base-commit`,
    /// and the base must stay in the repo: every later operation on it layers on that base.
    fn check_base(
        &self,
        what: &str,
        commit: &str,
        deployment: &Deployment,
        base: &Base,
    ) -> Result<(), String> {
        let ostree =
            |args: &[&str]| (self.host.host.sysroot.ostree(args)).map_err(|err| format!("{err:#}"));
        let named = if deployment.requested.is_empty() {
            commit.to_string()
        } else {
            ostree(&["show", "--print-metadata-key=pkglayer.base-commit", commit])
                .map_err(|err| format!("{what}: commit {commit} names no base: {err}"))?
                .trim()
                .trim_matches('\'')
                .to_string()
        };
        if named != base.commit {
            return Err(format!(
                "{what}: based on {named}, expected base {} ({})",
                base.version, base.commit
            ));
        }
        ostree(&["show", &named])
            .map(drop)
            .map_err(|err| format!("{what}: its base commit {named} is gone from the repo: {err}"))
    }

    /// Bytes in the sysroot repo's `objects/`.
    fn repo_size(&self) -> u64 {
        fn walk(dir: &Path) -> u64 {
            std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|entry| match entry.file_type() {
                    Ok(kind) if kind.is_dir() => walk(&entry.path()),
                    _ => entry.metadata().map(|m| m.len()).unwrap_or(0),
                })
                .sum()
        }
        walk(&self.host.host.sysroot.path.join("ostree/repo/objects"))
    }

    /// The model's deployments, default first, one a line.
    fn describe_model(&self) -> String {
        (self.model.deployments.iter().enumerate())
            .map(|(i, d)| {
                let layered: Vec<String> = d.layered.iter().map(RepoPackage::nevra).collect();
                let (id, base, requested) = (&d.id, d.base, &d.requested);
                format!("  {i}: {id} base {base} requested {requested:?} layered {layered:?}\n")
            })
            .collect()
    }
}

/// `checksum.serial`, as ostree names a deployment.
fn id_of(entry: &pkglayer_testkit::AdminStatusEntry) -> String {
    format!("{}.{}", entry.checksum, entry.serial)
}

/// The `[packages] requested=` of an origin file.
fn requested_in(origin: &str) -> BTreeSet<String> {
    origin
        .lines()
        .find_map(|line| line.strip_prefix("requested="))
        .map(|list| {
            list.split(';')
                .filter(|n| !n.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .map(|value| {
            value
                .parse()
                .unwrap_or_else(|_| panic!("{name}={value} is not a number"))
        })
        .unwrap_or(default)
}

#[test]
fn a_random_life_keeps_every_deployment_whole() {
    require_root!();
    let seed = env_or("PKGLAYER_LIFECYCLE_SEED", DEFAULT_SEED);
    let steps = env_or("PKGLAYER_LIFECYCLE_STEPS", DEFAULT_STEPS);
    let baseline_step = SIZE_BASELINE_STEP.min(steps);
    let mut rng = Rng::new(seed);
    let mut life = Life::new();
    let started = std::time::Instant::now();
    let (mut baseline, mut largest) = (None, 0);
    for n in 1..=steps {
        let step = choose(&mut rng, &life.model);
        let model_before = life.describe_model();
        life.trail.push(step.to_string());
        let result = life.run(&step).and_then(|outcome| {
            life.trail[n - 1] = format!("{step}: {outcome}");
            life.check()
        });
        let size = life.repo_size();
        largest = largest.max(size);
        if n == baseline_step {
            baseline = Some(size);
        }
        let result = result.and_then(|()| match baseline {
            Some(first) if size > SIZE_FACTOR * first => Err(format!(
                "the repo's objects take {size} bytes, more than {SIZE_FACTOR} x {first} after \
                 step {baseline_step}"
            )),
            _ => Ok(()),
        });
        if let Err(why) = result {
            let trail: String = (life.trail.iter().enumerate())
                .map(|(i, step)| format!("  {:>4}. {step}\n", i + 1))
                .collect();
            panic!(
                "step {n} of {steps} failed (seed {seed}): {why}\n\
                 replay: PKGLAYER_LIFECYCLE_SEED={seed} PKGLAYER_LIFECYCLE_STEPS={n} scripts/test \
                 --test lifecycle\nsteps:\n{trail}the model before step {n} (default first):\n\
                 {model_before}"
            );
        }
    }
    println!(
        "{steps} steps (seed {seed}) in {:.0?}; repo objects: {} bytes after step {baseline_step}, \
         at most {largest}, {} at the end",
        started.elapsed(),
        baseline.unwrap_or(0),
        life.repo_size()
    );
}
