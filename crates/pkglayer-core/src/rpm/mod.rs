//! RPM package identity and, later, header reading and payload import.

mod nevra;

pub use nevra::Nevra;
