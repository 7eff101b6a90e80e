//! Client side of the port tests: connections from chosen loopback addresses, one-shot HTTP
//! requests, what the fixtures answer, PROXY protocol headers, and the master's fd and read
//! counters from /proc.

use super::{DEADLINE, wait_until};
use serde_json::Value;
use socket2::{Domain, Socket, Type};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// The loopback address `127.0.0.n`; Linux routes all of 127/8 to `lo`, so each one is a
/// distinct client address to the master.
pub fn source(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// A connection to `127.0.0.1:port` from `from` (any free port), with read and write
/// timeouts of [`DEADLINE`].
pub fn connect_from(from: IpAddr, port: u16) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&SocketAddr::new(from, 0).into())?;
    let to = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    socket.connect_timeout(&to.into(), DEADLINE)?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(DEADLINE))?;
    stream.set_write_timeout(Some(DEADLINE))?;
    Ok(stream)
}

/// An HTTP response as read to the end of the connection.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// Sends `GET path` with `Connection: close` on `stream` (after whatever was written on it
/// already) and reads the response until the server closes.
pub fn get_on(stream: &mut TcpStream, path: &str) -> io::Result<Response> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: clutch-test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

/// `GET path` on a fresh connection from `from` to `127.0.0.1:port`.
pub fn get_from(from: IpAddr, port: u16, path: &str) -> io::Result<Response> {
    get_on(&mut connect_from(from, port)?, path)
}

fn parse_response(raw: &[u8]) -> io::Result<Response> {
    let text = String::from_utf8_lossy(raw);
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, format!("{why}: {text:?}"));
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| bad("no complete response head"))?;
    let status = head
        .strip_prefix("HTTP/1.")
        .and_then(|r| r.get(2..5))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())
            .flatten()
    });
    if let Some(length) = length
        && body.len() != length
    {
        return Err(bad(&format!(
            "body of {} bytes, content-length {length}",
            body.len()
        )));
    }
    Ok(Response {
        status,
        head: head.to_string(),
        body: body.to_string(),
    })
}

/// Who answered: the JSON body the test fixtures send (`{"id","pid","remote"}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub id: u32,
    pub pid: u32,
    /// The client address the worker was told (or saw), if any.
    pub remote: Option<String>,
}

impl Served {
    /// Reads a fixture's answer; panics naming the response when it is not one.
    pub fn from(response: &Response) -> Served {
        assert_eq!(response.status, 200, "{response:?}");
        let v: Value = serde_json::from_str(response.body.trim())
            .unwrap_or_else(|e| panic!("the body is not a fixture's JSON ({e}): {response:?}"));
        let number = |k: &str| {
            v[k].as_u64()
                .unwrap_or_else(|| panic!("no `{k}` in {response:?}")) as u32
        };
        Served {
            id: number("id"),
            pid: number("pid"),
            remote: v["remote"].as_str().map(str::to_string),
        }
    }
}

/// `GET path` from `from`, answered by a fixture: who served it.
pub fn served_from(from: IpAddr, port: u16, path: &str) -> Served {
    let response = get_from(from, port, path)
        .unwrap_or_else(|e| panic!("GET {path} from {from} to port {port}: {e}"));
    Served::from(&response)
}

/// Reads until the peer closes; `Ok(bytes)` on end of file or a reset (the master closing a
/// socket it has unread bytes of resets it), `Err` if nothing ends within the read timeout.
pub fn read_until_closed(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(got),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A PROXY protocol v1 line for a TCP4 connection from `src` to `dst`.
pub fn proxy_v1(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    format!(
        "PROXY TCP4 {} {} {} {}\r\n",
        src.ip(),
        dst.ip(),
        src.port(),
        dst.port()
    )
    .into_bytes()
}

/// A PROXY protocol v2 header (command PROXY, TCP over IPv4) from `src` to `dst`.
pub fn proxy_v2(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let (SocketAddr::V4(src), SocketAddr::V4(dst)) = (src, dst) else {
        panic!("proxy_v2 takes IPv4 addresses: {src} {dst}");
    };
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x21); // version 2, PROXY
    h.push(0x11); // AF_INET, STREAM
    h.extend_from_slice(&12u16.to_be_bytes());
    h.extend_from_slice(&src.ip().octets());
    h.extend_from_slice(&dst.ip().octets());
    h.extend_from_slice(&src.port().to_be_bytes());
    h.extend_from_slice(&dst.port().to_be_bytes());
    h
}

/// How many fds `pid` has open.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("cannot list the fds of pid {pid}: {e}"))
        .count()
}

/// `pid`'s fd count once it has stayed the same for `quiet`, or panics after [`DEADLINE`].
pub fn settled_fd_count(pid: u32, quiet: Duration) -> usize {
    let mut last = fd_count(pid);
    let mut since = std::time::Instant::now();
    let settled = wait_until(DEADLINE, || {
        let now = fd_count(pid);
        if now != last {
            last = now;
            since = std::time::Instant::now();
        }
        since.elapsed() >= quiet
    });
    assert!(
        settled,
        "the fd count of pid {pid} never settled (last {last})"
    );
    last
}

/// The socket inodes `pid` holds open.
pub fn socket_inodes(pid: u32) -> Vec<u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|target| {
            target
                .to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// The path of a file in `fixtures/`.
pub fn fixture_file(name: &str) -> String {
    format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Whether `program --version` runs (for tests that need node or python3).
pub fn have(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `clutch start --no-agent -p 0 --host 127.0.0.1`, then `flags`, then `-- app...`, with a
/// parent channel, waited until ready: the running clutch, its port and `cluster-ready`'s
/// data.
pub fn start_on_port(flags: &[&str], app: &[&str]) -> (super::Clutch, u16, Value) {
    let mut args = vec!["--no-agent", "-p", "0", "--host", "127.0.0.1"];
    args.extend_from_slice(flags);
    args.push("--");
    args.extend_from_slice(app);
    let mut c = super::Clutch::spawn_with_parent(super::clutch_start(&args));
    let ready = c.expect_ready(DEADLINE);
    let port = ready["port"].as_u64().expect("a port in cluster-ready") as u16;
    (c, port, ready)
}

/// Stops clutch with SIGTERM: it exits 0 and leaves no process behind.
pub fn stop_cleanly(mut c: super::Clutch) {
    c.signal(libc::SIGTERM);
    let status = c.finish(DEADLINE);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", c.stderr.text());
}

/// The 127/8 source number `n`, spread over the whole of 127/8 (never a .0 nor a .255).
pub fn source_n(n: u32) -> IpAddr {
    let n = n.wrapping_mul(7919);
    IpAddr::V4(Ipv4Addr::new(
        127,
        (n >> 16) as u8,
        (n >> 8) as u8,
        (n % 250 + 2) as u8,
    ))
}

/// The slot kernel steering sends `from` to while `live` slots take connections.
pub fn steered_slot(live: &[u32], from: IpAddr) -> u32 {
    clutch::sticky::steering::table(live)[clutch::sticky::steering::bucket(from)]
}

/// Starts `workers` fixture app workers (`args`) with `--sticky` on 127.0.0.1, port 0, and
/// waits until they are ready and kernel-steered; the master and its port.
pub async fn start_kernel_sticky(workers: usize, args: &[&str]) -> (clutch::Master, u16) {
    let mut m = super::cluster(workers, None, args)
        .sticky()
        .port(0)
        .host("127.0.0.1")
        .start()
        .unwrap();
    let info = tokio::time::timeout(DEADLINE, m.ready())
        .await
        .expect("ready in time")
        .unwrap();
    assert_eq!(info.sticky_mode, Some("kernel-steered"), "{info:?}");
    let port = info.port.unwrap();
    (m, port)
}

/// One request behind a complete PROXY v1 header (client 198.51.100.7:4000), from
/// [`source`]`(1)`; the whole response.
pub fn get_behind_proxy_header(port: u16) -> Vec<u8> {
    let mut s = connect_from(source(1), port).unwrap();
    let mut bytes = proxy_v1(
        "198.51.100.7:4000".parse().unwrap(),
        "10.0.0.1:80".parse().unwrap(),
    );
    bytes.extend_from_slice(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    s.write_all(&bytes).unwrap();
    read_until_closed(&mut s).unwrap()
}
