//! Binds the system libsolv + libsolvext (Debian: libsolv-dev, libsolvext-dev) with bindgen.

use std::path::PathBuf;

fn main() {
    let libsolvext = pkg_config::Config::new()
        .atleast_version("0.7.20")
        .probe("libsolvext")
        .expect("libsolvext not found: install libsolv-dev and libsolvext-dev");
    let libsolv = pkg_config::probe_library("libsolv").expect("libsolv not found");

    let mut builder = bindgen::Builder::default()
        .header("wrapper.h")
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .allowlist_function("(pool|repo|repodata|solver|transaction|queue|selection|solvable|solv|dataiterator|map|testcase|policy)_.*")
        .allowlist_type("(Pool|Repo|Repodata|Solver|Transaction|Queue|Solvable|Map|Dataiterator|Id|Offset|solv_knownid)")
        .allowlist_var("(SOLVER|DISTTYPE|REPO|SOLVID|SELECTION|SOLVABLE|REL|RPM|TESTCASE|ARCH|EVRCMP|POOL|SOLV|ID|SOLVER_TRANSACTION|TRANSACTION|SOLVER_SOLUTION|SOLVER_RULE|REPOKEY)_.*")
        .prepend_enum_name(false)
        .derive_default(true)
        .generate_comments(false);
    for path in libsolv
        .include_paths
        .iter()
        .chain(&libsolvext.include_paths)
    {
        builder = builder.clang_arg(format!("-I{}", path.display()));
    }
    let bindings = builder.generate().expect("generating libsolv bindings");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("bindings.rs");
    bindings
        .write_to_file(out)
        .expect("writing libsolv bindings");
}
