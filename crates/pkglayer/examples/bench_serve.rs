//! Serves a directory over HTTP on 127.0.0.1 with the test kit's [`RepoServer`], for benchmarks
//! that want a repo behind a link of fixed rate: package files (`*.rpm`) go out at `RATE` bytes per
//! second in all (0 or absent: as fast as possible), metadata unthrottled.
//!
//! Usage: `bench_serve DIR [RATE]`; prints the base URL (`http://127.0.0.1:PORT/`) on one line, then
//! serves until it is killed.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use pkglayer_testkit::RepoServer;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, rate) = match args.as_slice() {
        [dir] => (dir, 0),
        [dir, rate] => (
            dir,
            rate.parse()
                .context("RATE is a number of bytes per second")?,
        ),
        _ => bail!("usage: bench_serve DIR [RATE]"),
    };
    let dir = std::fs::canonicalize(PathBuf::from(dir))?;
    let server = if rate > 0 {
        RepoServer::serve_throttled(&dir, rate)?
    } else {
        RepoServer::serve(&dir)?
    };
    println!("{}", server.url(""));
    std::io::stdout().flush()?;
    // The server's threads do the work until the process is killed.
    let _server = server;
    loop {
        std::thread::park();
    }
}
