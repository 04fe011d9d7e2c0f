//! Named points at the step boundaries of a layering, where tests interrupt the process the hard way.
//!
//! Compiled in only with the `failpoints` feature. `PKGLAYER_FAILPOINT=NAME` makes the process kill
//! itself with `SIGKILL` on reaching `NAME` (no destructor, no cleanup: as a power cut or the OOM
//! killer would); `PKGLAYER_FAILPOINT=NAME=pause` makes it stop there until killed, to hold a state
//! (e.g. the sysroot lock) while a test looks. Either way it first says so on stderr.
//!
//! The points, in pipeline order: `after-metadata`, `after-lock`, `after-download` (each package),
//! `after-import` (each import thread, once its imports are committed), `mid-compose`, `after-scripts`, `after-commit`, `mid-deploy`.

/// Every failpoint, in the order a layering reaches them.
pub const ALL: &[&str] = &[
    "after-metadata",
    "after-lock",
    "after-download",
    "after-import",
    "mid-compose",
    "after-scripts",
    "after-commit",
    "mid-deploy",
];

/// Reached `name`: kill or pause if the environment asks for it (with the `failpoints` feature).
pub fn hit(name: &str) {
    debug_assert!(ALL.contains(&name), "unknown failpoint {name}");
    #[cfg(feature = "failpoints")]
    enabled::hit(name);
}

#[cfg(feature = "failpoints")]
mod enabled {
    use std::io::Write;

    pub fn hit(name: &str) {
        let Ok(wanted) = std::env::var("PKGLAYER_FAILPOINT") else {
            return;
        };
        let (point, action) = wanted.split_once('=').unwrap_or((&wanted, "kill"));
        if point != name {
            return;
        }
        let mut stderr = std::io::stderr();
        if action == "pause" {
            let _ = writeln!(stderr, "failpoint {name}: paused");
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        let _ = writeln!(stderr, "failpoint {name}: killing the process");
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        // SIGKILL cannot be caught; this is never reached.
        std::process::abort();
    }
}
