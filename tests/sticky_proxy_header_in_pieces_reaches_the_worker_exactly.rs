//! `--sticky --proxy-protocol`: a PROXY header that reaches the master in two TCP segments,
//! cut anywhere (in v1 just after the space before the destination port, where a field is
//! still empty; in v2 inside the fixed part and inside the TLVs), and a v2 header carrying
//! TLVs, are taken off the socket exactly: the worker reads the whole request and no byte
//! of header, and sees the header's client address. A binary header of the wrong version
//! is closed at once and the master serves the next connection.

mod common;
use common::net::*;
use common::*;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Long enough that a header in two pieces is never cut by it.
const PROXY_TIMEOUT: Duration = Duration::from_secs(20);
/// A pause between the two writes, so the pieces travel as separate segments (input
/// shaping, not synchronisation: the outcome is the same if they merge).
const GAP: Duration = Duration::from_millis(30);

fn start() -> (Clutch, u16) {
    let timeout = PROXY_TIMEOUT.as_millis().to_string();
    let (c, port, _) = start_on_port(
        &[
            "-w",
            "2",
            "--sticky",
            "--proxy-protocol",
            "--proxy-timeout",
            &timeout,
        ],
        &[fixture(), "http"],
    );
    (c, port)
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// Sends `header` cut at `cut` (with TCP_NODELAY and a pause between the pieces), then a
/// request: who served it.
fn served_in_pieces(header: &[u8], cut: usize, port: u16) -> Served {
    let mut s: TcpStream = connect_from(source(1), port).unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(&header[..cut]).unwrap();
    std::thread::sleep(GAP);
    s.write_all(&header[cut..]).unwrap();
    let response = get_on(&mut s, "/").unwrap_or_else(|e| {
        panic!(
            "a request behind {:?} cut at {cut}: {e}",
            String::from_utf8_lossy(header)
        )
    });
    Served::from(&response)
}

/// A v2 PROXY header for `src` → `dst` (IPv4) with an ALPN, an authority and a NOOP TLV.
fn v2_with_tlvs(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let mut h = proxy_v2(src, dst);
    let mut tlvs = Vec::new();
    for (kind, value) in [
        (0x01u8, &b"h2"[..]),
        (0x02, b"example.com"),
        (0x04, &[0u8; 5][..]),
    ] {
        tlvs.push(kind);
        tlvs.extend_from_slice(&(value.len() as u16).to_be_bytes());
        tlvs.extend_from_slice(value);
    }
    let len = 12 + tlvs.len() as u16;
    h[14..16].copy_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&tlvs);
    h
}

#[test]
fn proxy_header_in_pieces_reaches_the_worker_exactly() {
    let (c, port) = start();

    let v1 = b"PROXY TCP4 203.0.113.7 10.0.0.1 5555 80\r\n";
    let before_dst_port = v1.len() - b"80\r\n".len();
    for cut in [1, 6, 11, before_dst_port, v1.len() - 1] {
        let served = served_in_pieces(v1, cut, port);
        assert_eq!(
            served.remote.as_deref(),
            Some("203.0.113.7:5555"),
            "v1 cut at {cut}"
        );
    }

    let v2 = v2_with_tlvs(addr("203.0.113.9:6666"), addr("10.0.0.1:80"));
    for cut in [5, 13, 15, 16 + 12 + 2, v2.len() - 1] {
        let served = served_in_pieces(&v2, cut, port);
        assert_eq!(
            served.remote.as_deref(),
            Some("203.0.113.9:6666"),
            "v2 with TLVs cut at {cut}"
        );
    }

    // Version 1 in the binary header's version nibble: closed without a response.
    let mut bad = proxy_v2(addr("203.0.113.9:6666"), addr("10.0.0.1:80"));
    bad[12] = 0x11;
    let mut s = connect_from(source(1), port).unwrap();
    s.write_all(&bad).unwrap();
    let got = read_until_closed(&mut s).expect("the master closes a bad v2 header");
    assert!(got.is_empty(), "got a response: {got:?}");

    let served = served_in_pieces(v1, v1.len(), port);
    assert_eq!(served.remote.as_deref(), Some("203.0.113.7:5555"));
    stop_cleanly(c);
}
