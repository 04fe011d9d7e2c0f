//! RPM packages: identity, file capabilities, and import into the package cache.

mod caps;
mod digests;
pub mod header_check;
pub mod import;
mod nevra;

pub use nevra::Nevra;
