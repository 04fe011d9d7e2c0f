//! A small model of an offline host for the lifecycle test: the vendor's bases, the packages the repo
//! serves, what each deployment must contain, and the steps a host's life is drawn from. It knows
//! only the rules a user relies on, not how pkglayer implements them, so the test can hold the real
//! tools' view against it after every step.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use pkglayer_core::failpoint;
use pkglayer_core::layout::refs;
use pkglayer_core::rpm::Nevra;
use pkglayer_testkit::{TestPackage, base_packages, host_arch};

/// splitmix64: a tiny, seedable generator, so a failing run can be replayed from its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// One of `items`, or `None` when there is none.
    pub fn pick<T: Clone>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.below(items.len())].clone())
    }
}

/// The packages a user asks for. None depends on another, so the repo may drop any that nothing
/// requests.
pub const REQUESTABLE: [&str; 5] = ["alpha", "beta", "gamma", "delta", "epsilon"];
/// The dependency `beta` and `delta` share; never requested, never dropped from the repo.
pub const LIBRARY: &str = "libbeta";
/// Every package the repo (or a base, absorbing one) can ship.
pub const POOL: [&str; 6] = ["alpha", "beta", "gamma", "delta", "epsilon", LIBRARY];
/// The package with a `%post`, which writes this file (under `/usr/etc` in the tree).
pub const SCRIPTED: (&str, &str) = ("gamma", "usr/etc/gamma.conf");

/// What `name` requires from the pool.
pub fn dependency(name: &str) -> Option<&'static str> {
    matches!(name, "beta" | "delta").then_some(LIBRARY)
}

/// A package as the repo serves it: version `version.0-1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RepoPackage {
    pub name: &'static str,
    pub version: u32,
}

impl RepoPackage {
    pub fn evr(&self) -> String {
        format!("{}.0-1", self.version)
    }

    pub fn nevra(&self) -> String {
        format!("{}-{}.{}", self.name, self.evr(), host_arch())
    }

    /// The package cache's ref for it (the escaping is pinned by the core's own unit test).
    pub fn cache_ref(&self) -> String {
        refs::package(&Nevra::parse(&self.nevra()).expect("a model package has a NEVRA"))
    }

    pub fn build(&self) -> TestPackage {
        let (name, v) = (self.name, self.version);
        let package = TestPackage::new(name, &self.evr());
        let package = match dependency(name) {
            Some(dep) => package.requires(dep),
            None => package,
        };
        if name == SCRIPTED.0 {
            return package
                .executable("/usr/bin/gamma", format!("#!/bin/sh\necho gamma {v}\n"))
                .script(
                    pkglayer_testkit::Script::Post,
                    "echo configured > /etc/gamma.conf",
                );
        }
        package.file(&format!("/usr/share/{name}/data"), format!("{name} {v}\n"))
    }
}

/// A package of the pool as base `version` ships it: older than any repo build (`0.VERSION-1`), with
/// other files, so a deployment's rpmdb tells which one it has.
fn absorbed_build(name: &str, version: u32) -> TestPackage {
    TestPackage::new(name, &format!("0.{version}-1")).file(
        &format!("/usr/share/{name}/base"),
        format!("{name} of base {version}\n"),
    )
}

/// A base the vendor published.
#[derive(Debug, Clone)]
pub struct Base {
    pub version: u32,
    pub commit: String,
    /// Pool packages this base ships itself: a request for one of them is inactive on it.
    pub absorbed: BTreeSet<&'static str>,
}

impl Base {
    /// The packages to publish for base `version` absorbing `absorbed`.
    pub fn packages(version: u32, absorbed: &BTreeSet<&'static str>) -> Vec<TestPackage> {
        let mut packages = base_packages(&version.to_string());
        packages.extend(absorbed.iter().map(|name| absorbed_build(name, version)));
        packages
    }

    pub fn nevras(&self) -> BTreeSet<String> {
        Base::packages(self.version, &self.absorbed)
            .iter()
            .map(TestPackage::nevra)
            .collect()
    }
}

/// What a deployment must be.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// `checksum.serial` as ostree named it when it was deployed.
    pub id: String,
    pub base: u32,
    /// The origin's `requested=`.
    pub requested: BTreeSet<String>,
    /// Packages layered on the base: the active requests and their dependency.
    pub layered: BTreeSet<RepoPackage>,
}

impl Deployment {
    /// Same base, request and packages: a transaction leading here deploys nothing.
    fn same_as(&self, other: &Deployment) -> bool {
        (self.base, &self.requested, &self.layered)
            == (other.base, &other.requested, &other.layered)
    }
}

/// What a transaction from the default deployment leads to.
#[derive(Debug)]
pub enum Outcome {
    /// Refused with exit status 1, for this reason.
    Refused(String),
    /// Nothing to do: the result equals the default deployment.
    Same,
    /// A new default deployment (its `id` still empty).
    New(Deployment),
}

/// The host as the user sees it: bases, the repo, the deployments (default first).
pub struct Model {
    pub bases: Vec<Base>,
    /// Version of each package the repo serves.
    pub repo: BTreeMap<&'static str, u32>,
    /// The newest version of each package ever built: a package the repo serves again comes back
    /// newer, never as an old build.
    built: BTreeMap<&'static str, u32>,
    pub deployments: Vec<Deployment>,
}

impl Model {
    /// Base 1 (commit `base_v1`) deployed as `id`, every pool package at version 1 in the repo.
    pub fn new(base_v1: &str, id: &str) -> Self {
        Model {
            bases: vec![Base {
                version: 1,
                commit: base_v1.to_string(),
                absorbed: BTreeSet::new(),
            }],
            repo: POOL.iter().map(|&name| (name, 1)).collect(),
            built: POOL.iter().map(|&name| (name, 1)).collect(),
            deployments: vec![Deployment {
                id: id.to_string(),
                base: 1,
                requested: BTreeSet::new(),
                layered: BTreeSet::new(),
            }],
        }
    }

    pub fn base(&self, version: u32) -> &Base {
        &self.bases[version as usize - 1]
    }

    pub fn newest_base(&self) -> &Base {
        self.bases.last().expect("base 1 is always there")
    }

    pub fn default(&self) -> &Deployment {
        &self.deployments[0]
    }

    /// What the repo serves now, for `create_repo`.
    pub fn repo_packages(&self) -> Vec<TestPackage> {
        self.repo
            .iter()
            .map(|(&name, &version)| RepoPackage { name, version }.build())
            .collect()
    }

    /// The repo serves a new build of `name`; returns its version.
    pub fn publish(&mut self, name: &'static str) -> u32 {
        let version = self.built[name] + 1;
        self.built.insert(name, version);
        self.repo.insert(name, version);
        version
    }

    /// Requestable packages the repo may drop: served, and requested by no deployment.
    pub fn droppable(&self) -> Vec<&'static str> {
        REQUESTABLE
            .into_iter()
            .filter(|name| self.repo.contains_key(name))
            .filter(|name| !self.deployments.iter().any(|d| d.requested.contains(*name)))
            .collect()
    }

    /// Requestable packages the default deployment does not request.
    pub fn unrequested(&self) -> Vec<&'static str> {
        let requested = &self.default().requested;
        REQUESTABLE
            .into_iter()
            .filter(|name| !requested.contains(*name))
            .collect()
    }

    /// Unrequested packages an install can layer: in the repo, not in the default's base.
    pub fn installable(&self) -> Vec<&'static str> {
        let base = self.base(self.default().base);
        self.unrequested()
            .into_iter()
            .filter(|name| self.repo.contains_key(name) && !base.absorbed.contains(name))
            .collect()
    }

    /// The transaction asking for `requested` on base `base`, where `added` are the packages this
    /// one adds to the request (which, unlike requests the default already has, must not be in the
    /// base: rpm-ostree's `--allow-inactive` rule).
    pub fn transaction(&self, base: u32, requested: BTreeSet<String>, added: &[&str]) -> Outcome {
        let on = self.base(base);
        if let Some(name) = added.iter().find(|name| on.absorbed.contains(*name)) {
            return Outcome::Refused(format!("base {base} already ships {name}"));
        }
        let mut layered = BTreeSet::new();
        for name in requested
            .iter()
            .filter(|name| !on.absorbed.contains(name.as_str()))
        {
            let Some((&name, &version)) = self.repo.get_key_value(name.as_str()) else {
                return Outcome::Refused(format!("the repo has no {name}"));
            };
            layered.insert(RepoPackage { name, version });
            if let Some(dep) = dependency(name).filter(|dep| !on.absorbed.contains(dep)) {
                layered.insert(RepoPackage {
                    name: dep,
                    version: self.repo[dep],
                });
            }
        }
        let next = Deployment {
            id: String::new(),
            base,
            requested,
            layered,
        };
        if next.same_as(self.default()) {
            Outcome::Same
        } else {
            Outcome::New(next)
        }
    }

    /// `install NAMES` on the default deployment.
    pub fn install(&self, names: &[&str]) -> Outcome {
        let default = self.default();
        let mut requested = default.requested.clone();
        requested.extend(names.iter().map(|name| name.to_string()));
        self.transaction(default.base, requested, names)
    }

    /// `uninstall NAME`, or with `None` `uninstall --all`.
    pub fn uninstall(&self, name: Option<&str>) -> Outcome {
        let default = self.default();
        let mut requested = default.requested.clone();
        match name {
            Some(name) => requested.retain(|r| r != name),
            None => requested.clear(),
        }
        self.transaction(default.base, requested, &[])
    }

    /// `upgrade`: the newest base and the repo's newest packages.
    pub fn upgrade(&self) -> Outcome {
        let requested = self.default().requested.clone();
        self.transaction(self.newest_base().version, requested, &[])
    }

    /// Deploys `next` as the default; offline, libostree keeps the previous default as rollback
    /// and prunes the rest.
    pub fn deploy(&mut self, next: Deployment) {
        self.deployments.truncate(1);
        self.deployments.insert(0, next);
    }

    /// Everything `rpm -qa` must list in `deployment`, sorted.
    pub fn rpmdb(&self, deployment: &Deployment) -> BTreeSet<String> {
        let mut nevras = self.base(deployment.base).nevras();
        nevras.extend(deployment.layered.iter().map(RepoPackage::nevra));
        nevras
    }
}

/// One step of a host's life: a pkglayer command, or a change the vendor or the repo makes.
#[derive(Debug, Clone)]
pub enum Step {
    Install(&'static str),
    DownloadOnly(&'static str),
    CacheOnly(&'static str),
    Uninstall(String),
    UninstallAll,
    Upgrade,
    UpgradeDownloadOnly,
    UpgradeCheck,
    Rollback,
    CleanupRollback,
    CleanupPending,
    CleanupCache,
    /// Two installs started together.
    Concurrent(&'static str, &'static str),
    /// An install (or with `None`, an upgrade) killed at a failpoint.
    Killed {
        point: &'static str,
        install: Option<&'static str>,
    },
    /// The vendor publishes the next base, shipping these pool packages itself.
    PublishBase(BTreeSet<&'static str>),
    /// The repo serves a new build of a package.
    RepoUpdate(&'static str),
    /// The repo stops serving a package nothing requests.
    RepoDrop(&'static str),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Step::Install(name) => write!(f, "install {name}"),
            Step::DownloadOnly(name) => write!(f, "install --download-only {name}"),
            Step::CacheOnly(name) => write!(f, "install -C {name}"),
            Step::Uninstall(name) => write!(f, "uninstall {name}"),
            Step::UninstallAll => write!(f, "uninstall --all"),
            Step::Upgrade => write!(f, "upgrade"),
            Step::UpgradeDownloadOnly => write!(f, "upgrade --download-only"),
            Step::UpgradeCheck => write!(f, "upgrade --check"),
            Step::Rollback => write!(f, "rollback"),
            Step::CleanupRollback => write!(f, "cleanup --rollback"),
            Step::CleanupPending => write!(f, "cleanup --pending"),
            Step::CleanupCache => write!(f, "cleanup --cache"),
            Step::Concurrent(a, b) => write!(f, "install {a} & install {b}, at once"),
            Step::Killed { point, install } => match install {
                Some(name) => write!(f, "install {name}, killed at {point}"),
                None => write!(f, "upgrade, killed at {point}"),
            },
            Step::PublishBase(absorbed) => {
                write!(f, "vendor publishes a base shipping {absorbed:?}")
            }
            Step::RepoUpdate(name) => write!(f, "repo publishes a new {name}"),
            Step::RepoDrop(name) => write!(f, "repo drops {name}"),
        }
    }
}

/// Draws the next step; weights are percent. A step that does not apply now (nothing to uninstall,
/// nothing left to install) is drawn again.
pub fn choose(rng: &mut Rng, model: &Model) -> Step {
    loop {
        let roll = rng.below(100);
        let installable = model.installable();
        let step = match roll {
            0..16 => rng.pick(&model.unrequested()).map(Step::Install),
            16..20 => rng.pick(&model.unrequested()).map(Step::DownloadOnly),
            20..26 => rng.pick(&model.unrequested()).map(Step::CacheOnly),
            26..35 => {
                let requested: Vec<String> = model.default().requested.iter().cloned().collect();
                rng.pick(&requested).map(Step::Uninstall)
            }
            35..38 => Some(Step::UninstallAll),
            38..46 => Some(Step::Upgrade),
            46..50 => Some(Step::UpgradeDownloadOnly),
            50..55 => Some(Step::UpgradeCheck),
            55..62 => Some(Step::Rollback),
            62..65 => Some(Step::CleanupRollback),
            65..67 => Some(Step::CleanupPending),
            67..70 => Some(Step::CleanupCache),
            70..75 => rng.pick(&installable).and_then(|a| {
                let others: Vec<_> = installable.iter().copied().filter(|&b| b != a).collect();
                rng.pick(&others).map(|b| Step::Concurrent(a, b))
            }),
            75..83 => {
                let point = rng.pick(failpoint::ALL).expect("there are failpoints");
                if rng.chance(60) {
                    let install = rng.pick(&installable);
                    install.map(|name| Step::Killed {
                        point,
                        install: Some(name),
                    })
                } else {
                    Some(Step::Killed {
                        point,
                        install: None,
                    })
                }
            }
            83..91 => Some(Step::PublishBase(absorbed_next(rng, model))),
            91..97 => rng.pick(&POOL).map(Step::RepoUpdate),
            _ => rng.pick(&model.droppable()).map(Step::RepoDrop),
        };
        if let Some(step) = step {
            return step;
        }
    }
}

/// What the next base ships of the pool: often one more package (preferably one the default
/// deployment layers, so its request goes inactive), sometimes one less (so it comes back).
fn absorbed_next(rng: &mut Rng, model: &Model) -> BTreeSet<&'static str> {
    let mut absorbed = model.newest_base().absorbed.clone();
    let layered: Vec<&str> = model.default().layered.iter().map(|p| p.name).collect();
    match rng.below(100) {
        0..50 => {
            let name = rng
                .pick(&layered)
                .or_else(|| rng.pick(&POOL))
                .expect("the pool");
            absorbed.insert(name);
        }
        50..85 => {
            let shipped: Vec<&str> = absorbed.iter().copied().collect();
            if let Some(name) = rng.pick(&shipped) {
                absorbed.remove(name);
            }
        }
        _ => {}
    }
    absorbed
}
