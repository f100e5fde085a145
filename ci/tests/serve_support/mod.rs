//! Shared by the `gauntlet serve` suites: the server process (killed on drop) and a minimal
//! HTTP/1.1 client over `std::net::TcpStream` with bounded connects, reads and writes.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gauntlet_engine::fixture::{Preset, WeightFormat};
use gauntlet_suites::fixtures;
use serde_json::Value;

pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The fixture seed every served model uses: seed 0 is the one the loading suites
/// use too, so the >1 GiB preset exists once on disk.
pub const SEED: u64 = 0;

/// A server process; killed when dropped.
pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
}

impl Server {
    pub fn start(preset: Preset, extra: &[&str]) -> Server {
        Self::start_model(&fixtures::path(preset, WeightFormat::Tq2_0, SEED), extra)
    }

    /// [`Server::start`], or `None` after a `SKIP` line where the disk has no room
    /// for the preset (see `fixtures::path_or_skip`).
    pub fn start_or_skip(preset: Preset, extra: &[&str]) -> Option<Server> {
        let model = fixtures::path_or_skip(preset, WeightFormat::Tq2_0, SEED)?;
        Some(Self::start_model(&model, extra))
    }

    fn start_model(model: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gauntlet"))
            .arg("serve")
            .arg(model)
            .args(["--addr", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn gauntlet serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server printed its address within 30 s");
        let addr = line
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .expect("socket address");
        Server {
            child: Some(child),
            addr,
        }
    }

    pub fn get(&self, path: &str) -> Response {
        request(self.addr, "GET", path, &[], b"")
    }

    pub fn post(&self, path: &str, body: &str) -> Response {
        request(self.addr, "POST", path, &[], body.as_bytes())
    }

    pub fn status(&self) -> Value {
        let r = self.get("/v1/status");
        assert_eq!(r.code, 200, "{}", r.body);
        r.json()
    }

    /// Waits (bounded) until `/v1/status` satisfies `cond`.
    pub fn wait_status(
        &self,
        what: &str,
        within: Duration,
        cond: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let s = self.status();
            if cond(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{what} not seen within {within:?}: {s}"
            );
            std::thread::yield_now();
        }
    }

    /// The server's `/proc/<pid>/maps`: which files it has mapped right now.
    pub fn maps(&self) -> String {
        let pid = self.child.as_ref().expect("running").id();
        std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("read /proc/<pid>/maps")
    }

    /// Sends SIGTERM and waits for the exit, up to `within`.
    pub fn terminate(mut self, within: Duration) -> (std::process::ExitStatus, Duration) {
        let mut child = self.child.take().expect("running");
        let pid = libc::pid_t::try_from(child.id()).expect("pid");
        let start = Instant::now();
        // SAFETY: plain kill(2) on our own child, which has not been reaped.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        match rx.recv_timeout(within) {
            Ok(status) => (status.expect("wait"), start.elapsed()),
            Err(_) => {
                // SAFETY: as above; the waiting thread reaps it.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                panic!("server still running {within:?} after SIGTERM");
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[derive(Debug)]
pub struct Response {
    pub code: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `POST /v1/infer` with `body`.
pub fn infer(addr: SocketAddr, body: impl AsRef<[u8]>) -> Response {
    request(addr, "POST", "/v1/infer", &[], body.as_ref())
}

/// [`infer`] on a thread of its own, for a request that stays in flight while the test
/// goes on; join the handle for its response.
pub fn infer_in_background(
    addr: SocketAddr,
    body: impl AsRef<[u8]> + Send + 'static,
) -> JoinHandle<Response> {
    std::thread::spawn(move || infer(addr, body))
}

/// `POST /admin/models/swap` to the model file at `to`, with `token` as the bearer.
pub fn swap(addr: SocketAddr, token: &str, to: &Path) -> Response {
    let body = format!(r#"{{"path": {:?}}}"#, to.to_str().expect("utf-8 path"));
    let auth = format!("Bearer {token}");
    request(
        addr,
        "POST",
        "/admin/models/swap",
        &[("Authorization", auth.as_str())],
        body.as_bytes(),
    )
}

/// A minimal HTTP/1.1 client: one request per connection, bounded reads and writes.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    s.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write head");
    // A server may answer (422) before reading an oversized body and close.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    // Keep what arrived even if the server then resets the connection (it does when it
    // answers 422 without reading the whole body).
    if let Err(e) = s.read_to_end(&mut raw) {
        assert!(!raw.is_empty(), "read response: {e}");
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").expect("response head");
    let mut lines = head.lines();
    let code = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Response {
        code,
        headers,
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

pub fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}
