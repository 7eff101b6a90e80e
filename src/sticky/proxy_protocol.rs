//! The PROXY protocol header (HAProxy's `proxy-protocol.txt`, versions 1 and 2) that a load
//! balancer puts in front of a connection to tell us the real client address.
//!
//! With `--proxy-protocol` the master reads the header itself and then hands the socket to an
//! app worker, so it must take exactly the header's bytes off the socket and leave everything
//! after it for the worker. [`parse`] is a pure function over the bytes seen so far (the
//! grammar is the `ppp` crate's);
//! [`HeaderRead`] takes a header off a socket exactly, waiting on readiness (no polling)
//! while it arrives in pieces.
//!
//! # Caveats
//! - The header is trusted as given: only put `--proxy-protocol` on a listener that nothing
//!   but the load balancer can reach, or clients can claim any address.
//! - v2 TLVs (ALPN, SNI, TLS details, CRC32C) are skipped unread, so a CRC32C TLV is not checked.

use ppp::PartialResult;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// A complete PROXY protocol header found at the start of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeader {
    /// Bytes the header occupies at the start of the stream.
    pub len: usize,
    /// The real client (source) and the address it connected to, when the header carries them
    /// (None for v1 `UNKNOWN`, v2 `LOCAL`, or v2 families other than INET/INET6 such as UNIX).
    pub addresses: Option<(SocketAddr, SocketAddr)>,
}

/// Why no PROXY protocol header could be taken from a connection.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProxyError {
    /// The stream starts with something that is neither a v1 nor a v2 header.
    #[error(
        "connection does not start with a PROXY protocol header; check that the load balancer \
         sends PROXY protocol v1 or v2, or turn off --proxy-protocol"
    )]
    NotProxy,
    /// A v1 (text) header that breaks the grammar; the text says where.
    #[error("malformed PROXY protocol v1 header: {0}")]
    BadV1(String),
    /// A v2 (binary) header that breaks the format; the text says where.
    #[error("malformed PROXY protocol v2 header: {0}")]
    BadV2(String),
    /// A v2 header announcing more than [`MAX_HEADER`] bytes.
    #[error("PROXY protocol header longer than {MAX_HEADER} bytes")]
    TooLong,
    /// No complete header arrived within the timeout given to [`read_header`].
    #[error("no complete PROXY protocol header before the timeout")]
    Timeout,
    /// The peer closed the connection before sending a complete header.
    #[error("connection closed before a complete PROXY protocol header")]
    Closed,
    /// The socket failed while the header was read.
    #[error("reading the PROXY protocol header: {0}")]
    Io(String),
}

/// Largest header accepted (v1 is at most 107 bytes; v2 with TLVs is bounded by this).
pub const MAX_HEADER: usize = 4096;

/// Longest v1 line the spec allows, CRLF included (`PROXY UNKNOWN` with two full IPv6
/// addresses and ports).
const V1_MAX: usize = 107;
/// The 16 fixed bytes of a v2 header: signature, version/command, family/transport, length.
const V2_FIXED: usize = 16;

/// Ok(None): the bytes so far are a valid prefix but incomplete; Ok(Some(h)): a full header.
///
/// The grammar is the `ppp` crate's. Around it, what a stream reader needs and ppp leaves to
/// its caller: a bound on the length, an answer as soon as a wrong sender shows, and the
/// spec's strictness where ppp is lenient.
pub fn parse(buf: &[u8]) -> Result<Option<ProxyHeader>, ProxyError> {
    // The first byte already tells the versions apart ('P' against CR), which lets anything
    // else be turned away before a whole header's worth of bytes has arrived.
    match buf.first() {
        None => Ok(None),
        Some(b'P') => parse_v1(buf),
        Some(b'\r') => parse_v2(buf),
        Some(_) => Err(ProxyError::NotProxy),
    }
}

/// Reads a header off `stream` (see [`HeaderRead`]) within `timeout`: Timeout if none is
/// whole by then, Closed on end of file, TooLong past [`MAX_HEADER`], or the parse error.
#[cfg(test)]
pub async fn read_header(
    stream: &mut TcpStream,
    timeout: Duration,
) -> Result<ProxyHeader, ProxyError> {
    HeaderRead::default().finish(stream, timeout).await
}

/// A header being taken off a socket, exactly: never a byte past its end, since what follows
/// belongs to the worker that receives the fd.
///
/// Each step peeks at what the socket holds and then reads (consumes) every byte that is
/// certainly header: all of it while the header is unfinished, up to its end once it is
/// whole. So an unfinished header leaves the socket empty, and the next readiness event
/// means new bytes; a peek alone would leave the socket readable and the waiter would wake
/// at once, again and again.
#[derive(Debug, Default)]
pub struct HeaderRead {
    /// The header bytes consumed so far.
    taken: Vec<u8>,
}

impl HeaderRead {
    /// One non-blocking step on `fd`: `Ok(Some)` once the header is whole and consumed,
    /// `Ok(None)` when the socket holds nothing more for now (wait until it is readable).
    pub fn advance(&mut self, fd: BorrowedFd<'_>) -> Result<Option<ProxyHeader>, ProxyError> {
        let mut seen = [0u8; MAX_HEADER];
        loop {
            let old = self.taken.len();
            if old == MAX_HEADER {
                return Err(ProxyError::TooLong);
            }
            seen[..old].copy_from_slice(&self.taken);
            let peeked = match recv(fd, &mut seen[old..], libc::MSG_PEEK) {
                Ok(0) => return Err(ProxyError::Closed),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error(e)),
            };
            let header = parse(&seen[..old + peeked])?;
            // While the header is unfinished every byte seen belongs to it.
            let end = header.map_or(old + peeked, |h| h.len);
            // The bytes are queued already, so this returns them at once.
            let got = match recv(fd, &mut seen[old..end], 0) {
                Ok(0) => return Err(ProxyError::Closed),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error(e)),
            };
            self.taken.extend_from_slice(&seen[old..old + got]);
            if let Some(h) = header
                && self.taken.len() == h.len
            {
                return Ok(Some(h));
            }
        }
    }

    /// Waits on `stream` until the header is whole, or fails as [`read_header`] does.
    pub async fn finish(
        mut self,
        stream: &TcpStream,
        timeout: Duration,
    ) -> Result<ProxyHeader, ProxyError> {
        let take = async {
            loop {
                stream.readable().await.map_err(io_error)?;
                // A step that ends without a header reports WouldBlock, so tokio forgets the
                // readiness it had and waits for the next event (new bytes or a close).
                match stream.try_io(Interest::READABLE, || match self.advance(stream.as_fd()) {
                    Ok(Some(h)) => Ok(Ok(h)),
                    Ok(None) => Err(io::ErrorKind::WouldBlock.into()),
                    Err(e) => Ok(Err(e)),
                }) {
                    Ok(done) => return done,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(io_error(e)),
                }
            }
        };
        tokio::time::timeout(timeout, take)
            .await
            .map_err(|_| ProxyError::Timeout)?
    }
}

/// recv(2) without blocking, whatever the socket's mode.
fn recv(fd: BorrowedFd<'_>, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
    // SAFETY: recv writes at most buf.len() bytes into a live buffer on an open socket.
    let n = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            flags | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

fn io_error(err: io::Error) -> ProxyError {
    if err.kind() == io::ErrorKind::UnexpectedEof {
        ProxyError::Closed
    } else {
        ProxyError::Io(err.to_string())
    }
}

fn parse_v1(buf: &[u8]) -> Result<Option<ProxyHeader>, ProxyError> {
    use ppp::v1::{Addresses, BinaryParseError, Header, ParseError};
    let header = match Header::try_from(buf) {
        Ok(header) => header,
        Err(e) if e.is_incomplete() => {
            // ppp waits for a CR however long the line; the spec bounds it.
            return if buf.len() >= V1_MAX {
                Err(ProxyError::BadV1(format!(
                    "no CRLF within the first {V1_MAX} bytes"
                )))
            } else {
                Ok(None)
            };
        }
        // ppp reads the four address fields once the last one has begun, so a line cut
        // just after the space before the destination port shows that port empty.
        Err(BinaryParseError::Parse(ParseError::InvalidDestinationPort(_)))
            if buf.ends_with(b" ") && !buf.contains(&b'\r') =>
        {
            return Ok(None);
        }
        Err(BinaryParseError::Parse(ParseError::InvalidPrefix)) => {
            return Err(ProxyError::NotProxy);
        }
        Err(e) => return Err(ProxyError::BadV1(e.to_string())),
    };
    let len = header.header.len();
    let addresses = match header.addresses {
        Addresses::Unknown => None,
        Addresses::Tcp4(a) => Some((
            SocketAddr::new(IpAddr::V4(a.source_address), a.source_port),
            SocketAddr::new(IpAddr::V4(a.destination_address), a.destination_port),
        )),
        Addresses::Tcp6(a) => Some((
            SocketAddr::new(IpAddr::V6(a.source_address), a.source_port),
            SocketAddr::new(IpAddr::V6(a.destination_address), a.destination_port),
        )),
    };
    // The ports go through u16::from_str, which also takes a leading '+'; the spec's ports
    // and addresses are digits, hex digits, dots and colons only.
    let strict = header
        .addresses_str()
        .bytes()
        .all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b':' || b == b' ');
    if addresses.is_some() && !strict {
        return Err(ProxyError::BadV1(
            "addresses and ports must be plain hex digits, dots and colons".into(),
        ));
    }
    Ok(Some(ProxyHeader { len, addresses }))
}

fn parse_v2(buf: &[u8]) -> Result<Option<ProxyHeader>, ProxyError> {
    use ppp::v2::{Addresses, Command, Header, ParseError, Protocol};
    if buf.len() < V2_FIXED {
        return v2_prefix(buf);
    }
    let header = match Header::try_from(buf) {
        Ok(header) => header,
        Err(ParseError::Partial(_, length)) if V2_FIXED + length > MAX_HEADER => {
            return Err(ProxyError::TooLong);
        }
        Err(ParseError::Incomplete(_) | ParseError::Partial(..)) => return Ok(None),
        Err(ParseError::Prefix) => return Err(ProxyError::NotProxy),
        Err(e) => return Err(ProxyError::BadV2(e.to_string())),
    };
    // LOCAL headers come from the balancer's own health checks, and with an UNSPEC transport
    // the spec says to ignore the address block: the connection's own addresses stand.
    let proxied = header.command == Command::Proxy && header.protocol != Protocol::Unspecified;
    let addresses = match header.addresses {
        Addresses::IPv4(a) if proxied => Some((
            SocketAddr::new(IpAddr::V4(a.source_address), a.source_port),
            SocketAddr::new(IpAddr::V4(a.destination_address), a.destination_port),
        )),
        Addresses::IPv6(a) if proxied => Some((
            SocketAddr::new(IpAddr::V6(a.source_address), a.source_port),
            SocketAddr::new(IpAddr::V6(a.destination_address), a.destination_port),
        )),
        _ => None,
    };
    // The length covers the addresses and any TLVs after them; the TLVs are left unread.
    Ok(Some(ProxyHeader {
        len: header.header.len(),
        addresses,
    }))
}

/// ppp looks at the version, command and family bytes only once all 16 fixed bytes are in.
/// To turn a wrong sender away as soon as they arrive, it is asked about the bytes so far
/// completed with valid ones (a LOCAL v2 header announcing an address block long enough
/// for any family): an error then is the sender's.
fn v2_prefix(buf: &[u8]) -> Result<Option<ProxyHeader>, ProxyError> {
    use ppp::v2::{Header, PROTOCOL_PREFIX, ParseError};
    let mut probe = [0u8; V2_FIXED];
    probe[..PROTOCOL_PREFIX.len()].copy_from_slice(PROTOCOL_PREFIX);
    probe[12] = 0x20;
    probe[14..16].copy_from_slice(&(2u16 * 108).to_be_bytes());
    probe[..buf.len()].copy_from_slice(buf);
    match Header::try_from(&probe[..]) {
        Ok(_) | Err(ParseError::Incomplete(_) | ParseError::Partial(..)) => Ok(None),
        Err(ParseError::Prefix) => Err(ProxyError::NotProxy),
        Err(e) => Err(ProxyError::BadV2(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn v2(version_command: u8, family_transport: u8, block: &[u8]) -> Vec<u8> {
        let mut header = ppp::v2::PROTOCOL_PREFIX.to_vec();
        header.push(version_command);
        header.push(family_transport);
        header.extend_from_slice(&(block.len() as u16).to_be_bytes());
        header.extend_from_slice(block);
        header
    }

    fn inet_block() -> Vec<u8> {
        let mut block = vec![192, 0, 2, 1, 198, 51, 100, 2];
        block.extend_from_slice(&56324u16.to_be_bytes());
        block.extend_from_slice(&443u16.to_be_bytes());
        block
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn v1_tcp4_parsed() {
        let line = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n";
        let header = parse(line).unwrap().unwrap();
        assert_eq!(header.len, 47);
        assert_eq!(
            header.addresses,
            Some((addr("192.168.0.1:56324"), addr("192.168.0.11:443")))
        );
    }

    #[test]
    fn v1_tcp6_parsed() {
        let line = b"PROXY TCP6 2001:db8::1 2001:db8:0:0:0:0:0:2 0 65535\r\n";
        let header = parse(line).unwrap().unwrap();
        assert_eq!(header.len, line.len());
        assert_eq!(
            header.addresses,
            Some((addr("[2001:db8::1]:0"), addr("[2001:db8::2]:65535")))
        );
    }

    #[test]
    fn v1_unknown_has_no_addresses() {
        for line in [
            &b"PROXY UNKNOWN\r\n"[..],
            b"PROXY UNKNOWN ffff::1 ffff::2 65535 65535\r\n",
        ] {
            let header = parse(line).unwrap().unwrap();
            assert_eq!(header.len, line.len());
            assert_eq!(header.addresses, None);
        }
    }

    #[test]
    fn v1_bad_port_rejected() {
        for port in ["65536", "080", "+80", "-1", "8x", "", "99999999"] {
            let line = format!("PROXY TCP4 10.0.0.1 10.0.0.2 {port} 443\r\n");
            assert!(
                matches!(parse(line.as_bytes()), Err(ProxyError::BadV1(_))),
                "source port {port:?} accepted"
            );
            let line = format!("PROXY TCP4 10.0.0.1 10.0.0.2 443 {port}\r\n");
            assert!(
                matches!(parse(line.as_bytes()), Err(ProxyError::BadV1(_))),
                "destination port {port:?} accepted"
            );
        }
    }

    #[test]
    fn v1_bad_address_rejected() {
        for line in [
            "PROXY TCP4 2001:db8::1 10.0.0.2 1 2\r\n",
            "PROXY TCP6 10.0.0.1 2001:db8::2 1 2\r\n",
            "PROXY TCP4 010.0.0.1 10.0.0.2 1 2\r\n",
            "PROXY TCP4 10.0.0.1 10.0.0.256 1 2\r\n",
            "PROXY TCP6 fe80::1%eth0 fe80::2 1 2\r\n",
            "PROXY TCP4  10.0.0.1 10.0.0.2 1 2\r\n",
            "PROXY TCP4 10.0.0.1 10.0.0.2 1 2 3\r\n",
            "PROXY UDP4 10.0.0.1 10.0.0.2 1 2\r\n",
        ] {
            assert!(
                matches!(parse(line.as_bytes()), Err(ProxyError::BadV1(_))),
                "{line:?} accepted"
            );
        }
    }

    #[test]
    fn v1_without_crlf_within_107_bytes_rejected() {
        let mut line = b"PROXY UNKNOWN ".to_vec();
        line.resize(V1_MAX, b'f');
        assert!(matches!(parse(&line), Err(ProxyError::BadV1(_))));
        // A CR as the 107th byte leaves no room for its LF.
        line[V1_MAX - 1] = b'\r';
        assert!(matches!(parse(&line), Err(ProxyError::BadV1(_))));
        // The longest legal line, CRLF ending exactly at byte 107, is still accepted.
        line[V1_MAX - 2] = b'\r';
        line[V1_MAX - 1] = b'\n';
        assert_eq!(parse(&line).unwrap().unwrap().len, V1_MAX);
    }

    #[test]
    fn v2_inet_parsed() {
        let mut stream = v2(0x21, 0x11, &inet_block());
        stream.extend_from_slice(b"payload");
        let header = parse(&stream).unwrap().unwrap();
        assert_eq!(header.len, 28);
        assert_eq!(
            header.addresses,
            Some((addr("192.0.2.1:56324"), addr("198.51.100.2:443")))
        );
    }

    #[test]
    fn v2_inet6_parsed() {
        let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let mut block = src.octets().to_vec();
        block.extend_from_slice(&dst.octets());
        block.extend_from_slice(&1234u16.to_be_bytes());
        block.extend_from_slice(&80u16.to_be_bytes());
        let header = parse(&v2(0x21, 0x21, &block)).unwrap().unwrap();
        assert_eq!(header.len, 52);
        assert_eq!(
            header.addresses,
            Some((addr("[2001:db8::1]:1234"), addr("[2001:db8::2]:80")))
        );
    }

    #[test]
    fn v2_local_has_no_addresses() {
        let header = parse(&v2(0x20, 0x00, &[])).unwrap().unwrap();
        assert_eq!(
            header,
            ProxyHeader {
                len: 16,
                addresses: None
            }
        );
        // Addresses sent along with LOCAL still count towards the length but are ignored.
        let header = parse(&v2(0x20, 0x11, &inet_block())).unwrap().unwrap();
        assert_eq!(
            header,
            ProxyHeader {
                len: 28,
                addresses: None
            }
        );
    }

    #[test]
    fn v2_tlvs_skipped() {
        let mut block = inet_block();
        block.extend_from_slice(&[0x01, 0x00, 0x02, b'h', b'2']); // ALPN "h2"
        block.extend_from_slice(&[0x04, 0x00, 0x03, 0, 0, 0]); // NOOP padding
        let mut stream = v2(0x21, 0x11, &block);
        let header_len = stream.len();
        stream.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let header = parse(&stream).unwrap().unwrap();
        assert_eq!(header.len, header_len);
        assert_eq!(
            header.addresses,
            Some((addr("192.0.2.1:56324"), addr("198.51.100.2:443")))
        );
    }

    #[test]
    fn v2_bad_version_rejected() {
        for version_command in [0x11, 0x31, 0x01] {
            let header = v2(version_command, 0x11, &inet_block());
            assert!(matches!(parse(&header), Err(ProxyError::BadV2(_))));
            // Rejected as soon as the version byte is in, before the rest arrives.
            assert!(matches!(parse(&header[..13]), Err(ProxyError::BadV2(_))));
        }
    }

    #[test]
    fn v2_length_past_max_header_is_too_long() {
        let mut header = v2(0x21, 0x11, &inet_block());
        header[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
        assert_eq!(parse(&header[..16]), Err(ProxyError::TooLong));
    }

    #[test]
    fn http_request_is_not_proxy() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(ProxyError::NotProxy));
        assert_eq!(parse(b"G"), Err(ProxyError::NotProxy));
        assert_eq!(parse(b"POST / HTTP/1.1\r\n"), Err(ProxyError::NotProxy));
        assert_eq!(parse(b"\r\n\r\n"), Ok(None), "still a v2 prefix");
        assert_eq!(parse(b"\r\nGET"), Err(ProxyError::NotProxy));
        // A TLS ClientHello.
        assert_eq!(parse(&[0x16, 0x03, 0x01]), Err(ProxyError::NotProxy));
    }

    #[test]
    fn truncated_header_is_incomplete() {
        let v1 = b"PROXY TCP6 2001:db8::1 2001:db8::2 1234 80\r\n".to_vec();
        let mut v2_tlv = inet_block();
        v2_tlv.extend_from_slice(&[0x04, 0x00, 0x01, 0]);
        for header in [v1, v2(0x21, 0x11, &v2_tlv), v2(0x20, 0x00, &[])] {
            for end in 0..header.len() {
                assert_eq!(
                    parse(&header[..end]),
                    Ok(None),
                    "prefix of {end} bytes of {header:?}"
                );
            }
            assert!(parse(&header).unwrap().is_some());
        }
    }

    /// A small seeded xorshift, so generated cases are the same on every run.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// A valid header of a random kind, and the addresses it must yield.
    fn random_header(rng: &mut Rng) -> (Vec<u8>, Option<(SocketAddr, SocketAddr)>) {
        let v4 = |rng: &mut Rng| Ipv4Addr::from(rng.next() as u32);
        let v6 =
            |rng: &mut Rng| Ipv6Addr::from(u128::from(rng.next()) << 64 | u128::from(rng.next()));
        let port = |rng: &mut Rng| rng.next() as u16;
        match rng.below(5) {
            0 => {
                let (s, d) = (
                    SocketAddr::new(v4(rng).into(), port(rng)),
                    SocketAddr::new(v4(rng).into(), port(rng)),
                );
                let line = format!(
                    "PROXY TCP4 {} {} {} {}\r\n",
                    s.ip(),
                    d.ip(),
                    s.port(),
                    d.port()
                );
                (line.into_bytes(), Some((s, d)))
            }
            1 => {
                let (s, d) = (
                    SocketAddr::new(v6(rng).into(), port(rng)),
                    SocketAddr::new(v6(rng).into(), port(rng)),
                );
                let line = format!(
                    "PROXY TCP6 {} {} {} {}\r\n",
                    s.ip(),
                    d.ip(),
                    s.port(),
                    d.port()
                );
                (line.into_bytes(), Some((s, d)))
            }
            2 => (b"PROXY UNKNOWN\r\n".to_vec(), None),
            kind => {
                let inet6 = kind == 4;
                let (s, d) = if inet6 {
                    (
                        SocketAddr::new(v6(rng).into(), port(rng)),
                        SocketAddr::new(v6(rng).into(), port(rng)),
                    )
                } else {
                    (
                        SocketAddr::new(v4(rng).into(), port(rng)),
                        SocketAddr::new(v4(rng).into(), port(rng)),
                    )
                };
                let mut block = Vec::new();
                for ip in [s.ip(), d.ip()] {
                    match ip {
                        IpAddr::V4(ip) => block.extend_from_slice(&ip.octets()),
                        IpAddr::V6(ip) => block.extend_from_slice(&ip.octets()),
                    }
                }
                block.extend_from_slice(&s.port().to_be_bytes());
                block.extend_from_slice(&d.port().to_be_bytes());
                for _ in 0..rng.below(4) {
                    let value_len = rng.below(40);
                    block.push([0x01, 0x02, 0x04, 0x05, 0x20][rng.below(5)]);
                    block.extend_from_slice(&(value_len as u16).to_be_bytes());
                    block.extend((0..value_len).map(|_| rng.next() as u8));
                }
                let family = if inet6 { 0x21 } else { 0x11 };
                (v2(0x21, family, &block), Some((s, d)))
            }
        }
    }

    #[test]
    fn generated_headers_are_found_exactly_from_every_prefix() {
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        for case in 0..3_000 {
            let (header, addresses) = random_header(&mut rng);
            let mut stream = header.clone();
            stream.extend((0..rng.below(64)).map(|_| rng.next() as u8));
            for end in 0..header.len() {
                assert_eq!(
                    parse(&stream[..end]),
                    Ok(None),
                    "case {case}: prefix {end} of {header:?}"
                );
            }
            let found = parse(&stream).unwrap().unwrap();
            assert_eq!(found.len, header.len(), "case {case}: {header:?}");
            assert_eq!(found.addresses, addresses, "case {case}: {header:?}");
        }
    }

    #[test]
    fn random_bytes_never_claim_more_than_they_hold() {
        let mut rng = Rng(0x0bad_f00d_0000_0007);
        for _ in 0..100_000 {
            // Start like a header often, so the parsers get past the first byte.
            let mut buf = match rng.below(3) {
                0 => b"PROXY ".to_vec(),
                1 => ppp::v2::PROTOCOL_PREFIX.to_vec(),
                _ => Vec::new(),
            };
            buf.extend((0..rng.below(120)).map(|_| match rng.below(4) {
                0 => {
                    let alphabet = b" 0123456789.:\r\nTCPUNKOW";
                    alphabet[rng.below(alphabet.len())]
                }
                _ => rng.next() as u8,
            }));
            if let Ok(Some(h)) = parse(&buf) {
                assert!(h.len <= buf.len() && h.len <= MAX_HEADER, "{buf:?}: {h:?}");
            }
        }
    }

    /// A connected (client, server) pair over loopback.
    async fn connected() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (client, server)
    }

    const GENEROUS: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn read_header_leaves_payload_in_socket() {
        let (mut client, mut server) = connected().await;
        client
            .write_all(b"PROXY TCP4 192.0.2.1 192.0.2.2 5000 80\r\nhello")
            .await
            .unwrap();
        client.shutdown().await.unwrap();

        let header = read_header(&mut server, GENEROUS).await.unwrap();
        assert_eq!(
            header.addresses,
            Some((addr("192.0.2.1:5000"), addr("192.0.2.2:80")))
        );
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"hello");
    }

    #[tokio::test]
    async fn read_header_waits_for_slow_header() {
        let (mut client, mut server) = connected().await;
        let header = v2(0x21, 0x11, &inet_block());
        let (first, second) = header.split_at(10);
        let (first, second) = (first.to_vec(), second.to_vec());
        let writer = tokio::spawn(async move {
            client.write_all(&first).await.unwrap();
            // Input shaping: the header reaches the server in two segments.
            tokio::time::sleep(Duration::from_millis(50)).await;
            client.write_all(&second).await.unwrap();
            client.write_all(b"after").await.unwrap();
            client
        });

        let parsed = read_header(&mut server, GENEROUS).await.unwrap();
        assert_eq!(parsed.len, header.len());
        assert_eq!(
            parsed.addresses,
            Some((addr("192.0.2.1:56324"), addr("198.51.100.2:443")))
        );
        let mut client = writer.await.unwrap();
        client.shutdown().await.unwrap();
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"after");
    }

    #[tokio::test]
    async fn unfinished_header_is_consumed_so_that_readiness_means_new_bytes() {
        let (mut client, server) = connected().await;
        client.write_all(b"PROXY TCP4 192.0.2.1").await.unwrap();
        server.readable().await.unwrap();
        let mut read = HeaderRead::default();
        assert_eq!(read.advance(server.as_fd()), Ok(None));
        assert_eq!(read.taken, b"PROXY TCP4 192.0.2.1");
        let mut rest = [0u8; 16];
        let left = recv(server.as_fd(), &mut rest, libc::MSG_PEEK);
        assert_eq!(
            left.map_err(|e| e.kind()),
            Err(io::ErrorKind::WouldBlock),
            "header bytes were left in the socket"
        );

        client
            .write_all(b" 192.0.2.2 5000 80\r\nGET")
            .await
            .unwrap();
        let header = read.finish(&server, GENEROUS).await.unwrap();
        assert_eq!(header.len, 40);
        let n = recv(server.as_fd(), &mut rest, 0).unwrap();
        assert_eq!(&rest[..n], b"GET");
    }

    #[tokio::test]
    async fn read_header_times_out() {
        let (mut client, mut server) = connected().await;
        client.write_all(b"PROXY TCP4 1.2").await.unwrap();

        let started = Instant::now();
        let result = read_header(&mut server, Duration::from_millis(200)).await;
        assert_eq!(result, Err(ProxyError::Timeout));
        assert!(started.elapsed() >= Duration::from_millis(200));
        drop(client);
    }

    #[tokio::test]
    async fn read_header_closed_is_error() {
        // Closed with nothing sent, and closed in the middle of a header: both end at once
        // rather than waiting out the (long) timeout.
        for sent in [&b""[..], b"PROXY TCP4 1.2"] {
            let (mut client, mut server) = connected().await;
            client.write_all(sent).await.unwrap();
            drop(client);

            let result = read_header(&mut server, GENEROUS).await;
            assert_eq!(result, Err(ProxyError::Closed), "after sending {sent:?}");
        }
    }
}
