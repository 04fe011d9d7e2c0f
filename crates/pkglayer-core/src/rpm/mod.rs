//! RPM packages: identity, integrity, and their payload as an OSTree tree.

pub mod archive;
mod caps;
pub(crate) mod digests;
pub mod header_check;
mod nevra;
pub(crate) mod payload;
pub(crate) mod placement;
pub(crate) mod tools;

pub use nevra::Nevra;
