//! RPM packages: identity, file capabilities, and import into the package cache.

mod caps;
pub mod import;
mod nevra;

pub use nevra::Nevra;
