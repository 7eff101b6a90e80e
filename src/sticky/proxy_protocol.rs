//! The PROXY protocol header (HAProxy's `proxy-protocol.txt`, versions 1 and 2) that a load
//! balancer puts in front of a connection to tell us the real client address.
//!
//! With `--proxy-protocol` the master reads the header itself and then hands the socket to an
//! app worker, so it must take exactly the header's bytes off the socket and leave everything
//! after it for the worker. [`parse`] is a pure function over the bytes seen so far;
//! [`HeaderRead`] takes a header off a socket exactly, waiting on readiness (no polling)
//! while it arrives in pieces.
//!
//! # Caveats
//! - The header is trusted as given: only put `--proxy-protocol` on a listener that nothing
//!   but the load balancer can reach, or clients can claim any address.
//! - v2 TLVs (ALPN, SNI, TLS details, CRC32C) are skipped unread, so a CRC32C TLV is not checked.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
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
    BadV1(&'static str),
    /// A v2 (binary) header that breaks the format; the text says where.
    #[error("malformed PROXY protocol v2 header: {0}")]
    BadV2(&'static str),
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

const V1_PREFIX: &[u8] = b"PROXY";
/// Longest v1 line the spec allows, CRLF included (`PROXY UNKNOWN` with two full IPv6
/// addresses and ports).
const V1_MAX: usize = 107;
const V1_PROTOCOLS: [&[u8]; 3] = [b"TCP4", b"TCP6", b"UNKNOWN"];

const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Signature, version/command, family/transport and the 16-bit length.
const V2_FIXED: usize = 16;
const V2_LOCAL: u8 = 0x0;
const V2_PROXY: u8 = 0x1;
const V2_TRANSPORT_UNSPEC: u8 = 0x0;

/// Ok(None): the bytes so far are a valid prefix but incomplete; Ok(Some(h)): a full header.
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
    let known = buf.len().min(V1_PREFIX.len());
    if buf[..known] != V1_PREFIX[..known] {
        return Err(ProxyError::NotProxy);
    }
    let Some(cr) = find_v1_line_end(buf)? else {
        check_v1_partial(&buf[known..])?;
        return Ok(None);
    };
    // find_v1_line_end only lets printable ASCII through, so this cannot fail.
    let line = std::str::from_utf8(&buf[V1_PREFIX.len()..cr])
        .map_err(|_| ProxyError::BadV1("the line is not US-ASCII"))?;
    let addresses = parse_v1_fields(line)?;
    Ok(Some(ProxyHeader {
        len: cr + 2,
        addresses,
    }))
}

/// The index of the CR of the terminating CRLF, None while it may still arrive.
fn find_v1_line_end(buf: &[u8]) -> Result<Option<usize>, ProxyError> {
    let window = &buf[..buf.len().min(V1_MAX)];
    for (i, &byte) in window.iter().enumerate().skip(V1_PREFIX.len()) {
        match byte {
            b'\r' => {
                return match window.get(i + 1) {
                    Some(b'\n') => Ok(Some(i)),
                    Some(_) => Err(ProxyError::BadV1("CR not followed by LF")),
                    // A LF at index 107 would make the line 108 bytes long.
                    None if i + 1 >= V1_MAX => {
                        Err(ProxyError::BadV1("no CRLF within the first 107 bytes"))
                    }
                    None => Ok(None),
                };
            }
            b'\n' => return Err(ProxyError::BadV1("LF without CR")),
            b' '..=b'~' => {}
            _ => return Err(ProxyError::BadV1("byte that is not printable US-ASCII")),
        }
    }
    if buf.len() >= V1_MAX {
        Err(ProxyError::BadV1("no CRLF within the first 107 bytes"))
    } else {
        Ok(None)
    }
}

/// Rejects an unfinished line as soon as its start cannot lead to a valid header, so a wrong
/// sender is told at once instead of after the timeout.
fn check_v1_partial(after_prefix: &[u8]) -> Result<(), ProxyError> {
    let Some((&first, rest)) = after_prefix.split_first() else {
        return Ok(());
    };
    if first != b' ' {
        return Err(ProxyError::BadV1("expected a single space after PROXY"));
    }
    let well_formed = match rest.iter().position(|&b| b == b' ' || b == b'\r') {
        Some(end) => V1_PROTOCOLS.contains(&&rest[..end]),
        None => V1_PROTOCOLS.iter().any(|p| p.starts_with(rest)),
    };
    if well_formed {
        Ok(())
    } else {
        Err(ProxyError::BadV1("protocol must be TCP4, TCP6 or UNKNOWN"))
    }
}

/// Parses the line between `PROXY` and the CRLF.
fn parse_v1_fields(line: &str) -> Result<Option<(SocketAddr, SocketAddr)>, ProxyError> {
    let Some(rest) = line.strip_prefix(' ') else {
        return Err(ProxyError::BadV1("expected a single space after PROXY"));
    };
    // The spec tells receivers to ignore whatever follows UNKNOWN on the line.
    if rest == "UNKNOWN" || rest.starts_with("UNKNOWN ") {
        return Ok(None);
    }
    // Splitting on single spaces makes a doubled space an empty field, which then fails to
    // parse: the grammar says exactly one space.
    let mut fields = rest.split(' ');
    let mut field = || fields.next().ok_or(ProxyError::BadV1("missing fields"));
    let (protocol, src, dst, src_port, dst_port) =
        (field()?, field()?, field()?, field()?, field()?);
    if fields.next().is_some() {
        return Err(ProxyError::BadV1("extra fields after the destination port"));
    }
    const BAD_V4: &str = "TCP4 needs two IPv4 addresses in dotted decimal without leading zeros";
    const BAD_V6: &str = "TCP6 needs two IPv6 addresses";
    let (src, dst) = match protocol {
        "TCP4" => (
            IpAddr::V4(parse_v1_ip(src, BAD_V4)?),
            IpAddr::V4(parse_v1_ip(dst, BAD_V4)?),
        ),
        "TCP6" => (
            IpAddr::V6(parse_v1_ip(src, BAD_V6)?),
            IpAddr::V6(parse_v1_ip(dst, BAD_V6)?),
        ),
        _ => return Err(ProxyError::BadV1("protocol must be TCP4, TCP6 or UNKNOWN")),
    };
    Ok(Some((
        SocketAddr::new(src, parse_v1_port(src_port)?),
        SocketAddr::new(dst, parse_v1_port(dst_port)?),
    )))
}

/// std's parsers are as strict as the spec asks: no leading zeros in IPv4 octets, no zone ids
/// or brackets in IPv6, and neither family accepted for the other.
fn parse_v1_ip<T: std::str::FromStr>(text: &str, what: &'static str) -> Result<T, ProxyError> {
    text.parse().map_err(|_| ProxyError::BadV1(what))
}

fn parse_v1_port(text: &str) -> Result<u16, ProxyError> {
    const BAD: ProxyError =
        ProxyError::BadV1("port must be a decimal 0-65535 without leading zeros");
    // u16::from_str alone would also take a leading '+' and leading zeros.
    let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || (text.len() > 1 && text.starts_with('0')) {
        return Err(BAD);
    }
    text.parse().map_err(|_| BAD)
}

fn parse_v2(buf: &[u8]) -> Result<Option<ProxyHeader>, ProxyError> {
    let known = buf.len().min(V2_SIGNATURE.len());
    if buf[..known] != V2_SIGNATURE[..known] {
        return Err(ProxyError::NotProxy);
    }
    // Each fixed byte is checked as soon as it is there, to fail fast on a wrong sender.
    let Some(&version_command) = buf.get(12) else {
        return Ok(None);
    };
    if version_command >> 4 != 2 {
        return Err(ProxyError::BadV2("version must be 2"));
    }
    let command = version_command & 0x0f;
    if command != V2_LOCAL && command != V2_PROXY {
        return Err(ProxyError::BadV2("command must be LOCAL (0) or PROXY (1)"));
    }
    let Some(&family_transport) = buf.get(13) else {
        return Ok(None);
    };
    // LOCAL headers come from the balancer's own health checks; the spec says to ignore
    // their family byte, so only PROXY headers have it checked.
    let address_len = if command == V2_PROXY {
        v2_address_len(family_transport)?
    } else {
        0
    };
    let (Some(&high), Some(&low)) = (buf.get(14), buf.get(15)) else {
        return Ok(None);
    };
    let len = V2_FIXED + usize::from(u16::from_be_bytes([high, low]));
    if len > MAX_HEADER {
        return Err(ProxyError::TooLong);
    }
    if buf.len() < len {
        return Ok(None);
    }
    // The length covers the addresses and any TLVs after them; the TLVs are left unread.
    let block = &buf[V2_FIXED..len];
    if block.len() < address_len {
        return Err(ProxyError::BadV2(
            "address block shorter than its address family needs",
        ));
    }
    let addresses = if command == V2_PROXY {
        v2_addresses(family_transport, block)
    } else {
        None
    };
    Ok(Some(ProxyHeader { len, addresses }))
}

/// The address block length the family needs, rejecting the values the spec says receivers
/// must reject.
fn v2_address_len(family_transport: u8) -> Result<usize, ProxyError> {
    if family_transport & 0x0f > 2 {
        return Err(ProxyError::BadV2(
            "transport must be UNSPEC (0), STREAM (1) or DGRAM (2)",
        ));
    }
    match family_transport >> 4 {
        0x0 => Ok(0),
        0x1 => Ok(2 * 4 + 2 * 2),
        0x2 => Ok(2 * 16 + 2 * 2),
        0x3 => Ok(2 * 108),
        _ => Err(ProxyError::BadV2(
            "address family must be UNSPEC (0), INET (1), INET6 (2) or UNIX (3)",
        )),
    }
}

/// Reads INET/INET6 addresses from a block already checked to be long enough.
fn v2_addresses(family_transport: u8, block: &[u8]) -> Option<(SocketAddr, SocketAddr)> {
    // With an UNSPEC transport the spec says to ignore the address information.
    if family_transport & 0x0f == V2_TRANSPORT_UNSPEC {
        return None;
    }
    let port = |at: usize| u16::from_be_bytes([block[at], block[at + 1]]);
    match family_transport >> 4 {
        0x1 => {
            let ip =
                |at: usize| Ipv4Addr::new(block[at], block[at + 1], block[at + 2], block[at + 3]);
            Some((
                SocketAddr::new(IpAddr::V4(ip(0)), port(8)),
                SocketAddr::new(IpAddr::V4(ip(4)), port(10)),
            ))
        }
        0x2 => {
            let ip = |at: usize| {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&block[at..at + 16]);
                Ipv6Addr::from(octets)
            };
            Some((
                SocketAddr::new(IpAddr::V6(ip(0)), port(32)),
                SocketAddr::new(IpAddr::V6(ip(16)), port(34)),
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn v2(version_command: u8, family_transport: u8, block: &[u8]) -> Vec<u8> {
        let mut header = V2_SIGNATURE.to_vec();
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
