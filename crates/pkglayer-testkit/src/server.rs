//! A real HTTP/1.1 server on 127.0.0.1 serving a directory, for repos in tests.
//!
//! It logs every request path (so tests can prove nothing is downloaded twice) and can be told to
//! misbehave on a path: answer with an error status, or close the connection mid-body.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// How the server answers a path it was told to break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and no body.
    Status(u16),
    /// Send the headers and half the body, then close the connection.
    Truncate,
    /// Like `Truncate`, for the first request only; later ones are served normally.
    TruncateOnce,
    /// Read the request, then say nothing (for a minute), as a hung server does.
    Hang,
}

#[derive(Default)]
struct Shared {
    requests: Vec<String>,
    /// Requests that asked for a byte range: path and the first byte asked for.
    ranges: Vec<(String, u64)>,
    faults: HashMap<String, Fault>,
}

/// Serves `root` on an ephemeral port until dropped.
pub struct RepoServer {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RepoServer {
    pub fn serve(root: &Path) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (root, shared, stop) = (root.to_path_buf(), shared.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (root, shared) = (root.clone(), shared.clone());
                    std::thread::spawn(move || {
                        let _ = handle(stream, &root, &shared);
                    });
                }
            })
        };
        Ok(RepoServer {
            addr,
            shared,
            stop,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT/` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// Every path requested so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.shared.lock().unwrap().requests.clone()
    }

    /// Requests that continued a download (`Range: bytes=N-`): path and N.
    pub fn ranges(&self) -> Vec<(String, u64)> {
        self.shared.lock().unwrap().ranges.clone()
    }

    /// How many requests asked for a path ending in `suffix`.
    pub fn count(&self, suffix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|p| p.ends_with(suffix))
            .count()
    }

    /// Makes requests for paths ending in `suffix` fail as `fault` says.
    pub fn break_path(&self, suffix: &str, fault: Fault) {
        self.shared
            .lock()
            .unwrap()
            .faults
            .insert(suffix.to_string(), fault);
    }

    pub fn clear_faults(&self) {
        self.shared.lock().unwrap().faults.clear();
    }
}

impl Drop for RepoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn handle(stream: TcpStream, root: &Path, shared: &Mutex<Shared>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        // Read the headers (only Range matters); a GET has no body.
        let mut range_start: Option<u64> = None;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("range")
            {
                range_start = value
                    .trim()
                    .strip_prefix("bytes=")
                    .and_then(|v| v.strip_suffix('-'))
                    .and_then(|v| v.parse().ok());
            }
        }
        let mut parts = request_line.split_whitespace();
        let (method, raw_path) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
        let path = raw_path.split('?').next().unwrap_or("/").to_string();
        let fault = {
            let mut shared = shared.lock().unwrap();
            shared.requests.push(path.clone());
            if let Some(start) = range_start {
                shared.ranges.push((path.clone(), start));
            }
            let hit = shared
                .faults
                .iter()
                .find(|(suffix, _)| path.ends_with(suffix.as_str()))
                .map(|(suffix, fault)| (suffix.clone(), *fault));
            if let Some((suffix, Fault::TruncateOnce)) = &hit {
                shared.faults.remove(suffix);
            }
            hit.map(|(_, fault)| fault)
        };

        if fault == Some(Fault::Hang) {
            std::thread::sleep(std::time::Duration::from_secs(60));
            return Ok(());
        }
        let file = resolve(root, &path);
        let body = match (&file, fault) {
            (_, Some(Fault::Status(code))) => {
                respond(&mut stream, code, &[], method)?;
                continue;
            }
            (Some(file), _) => match std::fs::read(file) {
                Ok(body) => body,
                Err(_) => {
                    respond(&mut stream, 404, &[], method)?;
                    continue;
                }
            },
            (None, _) => {
                respond(&mut stream, 404, &[], method)?;
                continue;
            }
        };
        if matches!(fault, Some(Fault::Truncate | Fault::TruncateOnce)) {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            stream.write_all(&body[..body.len() / 2])?;
            return Ok(());
        }
        match range_start {
            Some(start) if (start as usize) < body.len() => {
                write!(
                    stream,
                    "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{}\r\n\r\n",
                    body.len() - start as usize,
                    body.len() - 1,
                    body.len()
                )?;
                stream.write_all(&body[start as usize..])?;
                stream.flush()?;
            }
            Some(_) => respond(&mut stream, 416, &[], method)?,
            None => respond(&mut stream, 200, &body, method)?,
        }
    }
}

fn respond(stream: &mut TcpStream, code: u16, body: &[u8], method: &str) -> std::io::Result<()> {
    let reason = match code {
        200 => "OK",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        _ => "Error",
    };
    write!(
        stream,
        "HTTP/1.1 {code} {reason}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        stream.write_all(body)?;
    }
    stream.flush()
}

/// The file under `root` for a URL path, refusing anything that climbs out of it.
fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let relative = url_path.trim_start_matches('/');
    if relative.split('/').any(|part| part == "..") {
        return None;
    }
    let path = root.join(relative);
    path.is_file().then_some(path)
}
