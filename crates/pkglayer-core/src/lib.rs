//! pkglayer's library: everything pkglayer does, without printing.
//!
//! The binary parses arguments and renders results; the behaviour lives here. [`operation`] holds the
//! verbs (install, uninstall, upgrade, rollback, cleanup), each one transaction over the modules
//! below, one per domain noun: [`sysroot`] (deployments and their roles), [`origin`] (what a
//! deployment tracks and layers), [`deploy`] (changing the deployment list), [`retention`] (what the
//! repo keeps), [`rpmdb`] (reading a tree's packages), [`status`], [`repo`] and [`solver`] (metadata
//! and resolution), [`request`], [`plan`] and [`layer`] (the pipeline), [`compose`], [`scripts`]
//! (package scripts in their sandbox), [`users`] (accounts and their IDs), [`scratch`] and
//! [`failpoint`] (surviving interruptions).

pub(crate) mod base;
mod command;
pub mod commit_metadata;
pub(crate) mod compose;
pub mod deploy;
pub mod error;
pub mod failpoint;
pub mod layer;
pub mod layout;
pub mod operation;
pub mod origin;
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

pub use error::UserError;
pub use origin::Origin;
pub use sysroot::Sysroot;
