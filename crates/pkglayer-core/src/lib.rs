//! pkglayer's library: everything pkglayer does, without printing.
//!
//! The binary parses arguments and renders results; the behaviour lives here. Modules in plain
//! code spans are crate-private.
//!
//! - The verbs: [`operation`] changes the next boot (install, uninstall, upgrade, rollback,
//!   cleanup), each one transaction over the modules below; [`query`] leaves the deployments alone
//!   (packages of a deployment, diffs, refreshing repo metadata).
//! - Deployments: [`sysroot`] opens the OSTree root and tells the roles of its deployments,
//!   [`origin`] is what a deployment tracks and layers, [`deploy`] changes the deployment list, and
//!   [`status`] reports it.
//! - Where things live and what commits record: [`layout`] names the cache and state folders and the
//!   refs pkglayer owns; [`commit_metadata`] is what layered and package-cache commits carry.
//! - Resolution: `base` picks the vendor commit a layer goes on, [`repo`] reads and fetches repo
//!   metadata, [`modularity`] decides which module streams' packages are visible, [`solver`]
//!   resolves with libsolv against the base rpmdb, [`request`] edits what the
//!   origin asks for, and [`plan`] turns it all into a plan before anything is downloaded.
//! - Building the tree: [`layer`] applies a plan; `acquire` downloads, checks and imports what it
//!   needs, overlapping; `package_cache` imports each RPM once as its own
//!   commit, `compose` merges base and package trees into the layered commit, [`scripts`] runs
//!   package scripts in their sandbox, `users` gives accounts IDs that never change on the machine,
//!   [`rpm`] reads packages (identity, integrity, payload), [`rpmdb`] reads a tree's rpm database,
//!   `tree` reads files straight out of a commit, and `command` runs external programs.
//! - `retention` decides what the repo and the caches keep over a host's life; [`automatic`] runs
//!   the automatic update policy and records each run.
//! - Surviving interruptions: `scratch` keeps scratch directories that a later run finds and removes
//!   after a crash; [`failpoint`] lets tests kill the process at step boundaries.
//! - What callers get: [`error`] tells failures a user can act on from internal ones, and
//!   [`progress`] reports what an operation is doing.
//!
//! # Layering from Rust
//!
//! Layer `strace` on a sysroot's current deployment, as `pkglayer install strace` does. On a booted
//! host the sysroot is `/` and the repos are its `/etc/yum.repos.d`; this example (it runs with the
//! tests, as root) makes a throwaway sysroot and repo first, in the hidden lines.
//!
//! ```
//! use pkglayer_core::layer::Outcome;
//! use pkglayer_core::{Sysroot, operation};
//! # use pkglayer_testkit::{RepoServer, TestHost, create_repo, fixtures};
//!
//! fn main() -> anyhow::Result<()> {
//! #   if !pkglayer_testkit::is_root() {
//! #       return Ok(()); // a sysroot needs root
//! #   }
//! #   let host = TestHost::new()?;
//! #   let www = host.dir().join("www");
//! #   std::fs::create_dir_all(&www)?;
//! #   let server = RepoServer::serve(&www)?;
//! #   create_repo(&www.join("repo"), &fixtures::strace_with_dependencies(), "gz")?;
//! #   let reposdir = host.dir().join("repos.d");
//! #   std::fs::create_dir_all(&reposdir)?;
//! #   let repo_file = format!("[test]\nbaseurl={}\ngpgcheck=0\n", server.url("repo/"));
//! #   std::fs::write(reposdir.join("test.repo"), repo_file)?;
//! #   let sysroot_path = host.sysroot.path.clone();
//!     let sysroot = Sysroot::open(&sysroot_path, None)?;
//!     let request = operation::InstallRequest {
//!         packages: vec!["strace".into()],
//!         ..Default::default()
//!     };
//!     let options = operation::Options {
//!         reposdir: Some(reposdir), // None: the deployment's /etc/yum.repos.d
//!         ..Default::default()
//!     };
//!     let report = operation::install(
//!         &sysroot,
//!         &request,
//!         &options,
//!         &pkglayer_core::progress::Silent,
//!     )?;
//!     for package in &report.plan.added {
//!         println!("adding {}", package.nevra);
//!     }
//!     match &report.outcome {
//!         Some(Outcome::Deployed { deployment, .. }) => {
//!             println!("deployed {deployment}: it boots next")
//!         }
//!         Some(Outcome::NoChange) => println!("nothing to change"),
//!         Some(Outcome::Downloaded { imported }) => println!("downloaded {imported} packages"),
//!         None => println!("dry run: nothing changed"),
//!     }
//! #   assert!(matches!(report.outcome, Some(Outcome::Deployed { .. })));
//! #   assert_eq!(report.plan.added.len(), 3);
//!     Ok(())
//! }
//! ```

#![warn(missing_docs)]

pub(crate) mod acquire;
pub mod automatic;
pub(crate) mod base;
mod command;
pub mod commit_metadata;
pub(crate) mod compose;
pub mod deploy;
pub mod error;
pub mod failpoint;
pub mod fleet;
pub mod layer;
pub mod layout;
pub mod lockfile;
pub mod modularity;
pub mod operation;
pub mod origin;
pub mod overrides;
pub(crate) mod package_cache;
pub mod plan;
pub mod progress;
pub mod query;
pub mod repo;
pub mod request;
pub(crate) mod retention;
pub mod rpm;
pub mod rpmdb;
pub(crate) mod scratch;
pub mod scripts;
pub mod solver;
pub mod status;
pub mod sysroot;
pub(crate) mod tree;
pub(crate) mod users;
pub mod workspace;

pub use error::UserError;
pub use origin::Origin;
pub use sysroot::Sysroot;
