//! Errors a user can act on, and telling them from the others.
//!
//! Failures travel as `anyhow::Error` with context. Where we know what the user should do next, the
//! error carries a [`UserError`] with a hint (or is a solver problem, which says which request is at
//! fault); [`ErrorKind::of`] finds it anywhere in the chain, and the exit status follows from the
//! kind. Every other failure is internal: a bug, or a failure of the system underneath.

use std::fmt;

/// A failure with a known remedy, e.g. a path that is not a sysroot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserError {
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
}

impl UserError {
    /// An error saying `message` (what is wrong, naming the package, repo or path).
    pub fn new(message: impl Into<String>) -> Self {
        UserError {
            message: message.into(),
            hint: None,
        }
    }

    /// The same error with `hint`: what the user can do about it.
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

/// Who can act on a failure; the exit status follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request, the input or the host's state is at fault, and the message says how: exit 1.
    User,
    /// Nothing the user did explains it: a bug, or the system underneath failing. Exit 2.
    Internal,
}

impl ErrorKind {
    /// The kind of `err`: [`ErrorKind::User`] when a [`UserError`], a solver problem or a full
    /// disk is anywhere in its chain.
    pub fn of(err: &anyhow::Error) -> Self {
        let user = err.chain().any(|cause| {
            cause.is::<UserError>()
                || cause.is::<crate::solver::SolveError>()
                || is_out_of_space(cause)
        });
        if user {
            ErrorKind::User
        } else {
            ErrorKind::Internal
        }
    }

    /// The exit status of a command that failed this way (the CLI contract).
    pub fn exit_status(self) -> u8 {
        match self {
            ErrorKind::User => 1,
            ErrorKind::Internal => 2,
        }
    }
}

/// The hint of the first error in the chain that carries one ([`UserError`], solver problems, a
/// full disk).
pub fn hint_of(err: &anyhow::Error) -> Option<String> {
    err.chain().find_map(|cause| {
        if let Some(user) = cause.downcast_ref::<UserError>() {
            return user.hint.clone();
        }
        if is_out_of_space(cause) {
            return Some(OUT_OF_SPACE_HINT.to_string());
        }
        cause
            .downcast_ref::<crate::solver::SolveError>()
            .map(|solve| solve.hint())
    })
}

const OUT_OF_SPACE_HINT: &str = "nothing was changed; free space on the filesystem of the sysroot (`pkglayer cleanup --cache` drops what no deployment uses) and try again";

/// Whether `cause` is the filesystem running out of space, or libostree refusing to write below
/// the repo's `min-free-space-*`. libostree says the latter only in words (a plain
/// `G_IO_ERROR_FAILED`), so that one is known by its message.
fn is_out_of_space(cause: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(io) = cause.downcast_ref::<std::io::Error>() {
        return io.kind() == std::io::ErrorKind::StorageFull;
    }
    cause
        .downcast_ref::<ostree::glib::Error>()
        .is_some_and(|err| {
            err.matches(ostree::gio::IOErrorEnum::NoSpace)
                || err.message().contains("min-free-space-")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn the_kind_follows_from_the_chain() {
        let user: anyhow::Error = UserError::new("no enabled repos").hint("add one").into();
        let user = user.context("Planning the transaction");
        assert_eq!(ErrorKind::of(&user), ErrorKind::User);
        assert_eq!(hint_of(&user).as_deref(), Some("add one"));

        let internal = anyhow::anyhow!("commit abc has no rpm database").context("Layering");
        assert_eq!(ErrorKind::of(&internal), ErrorKind::Internal);
        assert_eq!(hint_of(&internal), None);
        assert_eq!(ErrorKind::Internal.exit_status(), 2);

        let full = Err::<(), _>(std::io::Error::from(std::io::ErrorKind::StorageFull))
            .context("Writing /var/cache/pkglayer/x")
            .unwrap_err();
        assert_eq!(ErrorKind::of(&full), ErrorKind::User);
        assert!(hint_of(&full).unwrap().contains("free space"));

        let ostree = ostree::glib::Error::new(
            ostree::gio::IOErrorEnum::Failed,
            "Writing content object: min-free-space-percent '3%' would be exceeded",
        );
        assert_eq!(ErrorKind::of(&ostree.into()), ErrorKind::User);
    }
}
