//! Errors a user can act on.
//!
//! Most failures travel as `anyhow::Error` with context. Where we know what the user should do next,
//! the error carries a [`UserError`] with a hint; the binary finds it anywhere in the chain and prints
//! `error: …` followed by `hint: …`.

use std::fmt;

/// A failure with a known remedy, e.g. a path that is not a sysroot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserError {
    pub message: String,
    pub hint: Option<String>,
}

impl UserError {
    pub fn new(message: impl Into<String>) -> Self {
        UserError {
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UserError {}

/// The hint of the first error in the chain that carries one ([`UserError`], solver problems).
pub fn hint_of(err: &anyhow::Error) -> Option<&str> {
    err.chain().find_map(|cause| {
        if let Some(user) = cause.downcast_ref::<UserError>() {
            return user.hint.as_deref();
        }
        cause
            .downcast_ref::<crate::solver::SolveError>()
            .map(|solve| solve.hint())
    })
}
