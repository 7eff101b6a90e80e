//! Accepting connections and reading socket addresses without going through std, so the
//! accepted socket comes out non-blocking in one syscall (`accept4`); and the few TCP
//! socket options and queries no crate offers.

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Accepts one connection, non-blocking and close-on-exec, with the peer's address.
pub fn accept(listener: RawFd) -> io::Result<(OwnedFd, std::net::SocketAddr)> {
    // SAFETY: sockaddr_storage is plain data, large enough for any address.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: accept4 writes at most `len` bytes into `storage`.
    let fd = unsafe {
        libc::accept4(
            listener,
            (&raw mut storage).cast(),
            &mut len,
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: accept4 returned a new fd that we own.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok((owned, to_socket_addr(&storage)?))
}

/// The local address of a connected socket.
pub fn local_addr(fd: &OwnedFd) -> io::Result<std::net::SocketAddr> {
    // SAFETY: as in `accept`.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: getsockname writes at most `len` bytes into `storage`.
    if unsafe { libc::getsockname(fd.as_raw_fd(), (&raw mut storage).cast(), &mut len) } < 0 {
        return Err(io::Error::last_os_error());
    }
    to_socket_addr(&storage)
}

/// TCP_DEFER_ACCEPT: the kernel queues a connection for `accept` only once its first data
/// arrived (or, for a client that sends nothing, after about `secs`). Neither socket2 nor nix
/// offer it on Linux.
pub fn defer_accept(listener: BorrowedFd<'_>, secs: u32) -> io::Result<()> {
    let secs = libc::c_int::try_from(secs).unwrap_or(libc::c_int::MAX);
    // SAFETY: setsockopt reads one c_int from a live value.
    let rc = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&raw const secs).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether anyone has read peer data from the TCP socket `fd` (beyond the
/// `consumed_by_master` bytes of a PROXY header the master took itself): the bytes the
/// kernel received in order (`TCP_INFO`'s `tcpi_bytes_received`) against those still
/// queued unread (`SIOCINQ`). A socket handed to a worker that died before acknowledging
/// it may be passed on only when this is false: a request already read is gone for good.
///
/// Reads with MSG_PEEK do not count. Urgent (out-of-band) data is not accounted for.
pub fn peer_bytes_consumed(fd: BorrowedFd<'_>, consumed_by_master: u64) -> io::Result<bool> {
    // Data arriving between the two queries would skew the difference either way; a pair
    // with the same received count on both sides of SIOCINQ is consistent.
    for _ in 0..8 {
        let before = tcp_bytes_received(fd)?;
        let unread = bytes_unread(fd)?;
        let after = tcp_bytes_received(fd)?;
        if before.received == after.received {
            // The kernel counts a received FIN as one byte in tcpi_bytes_received (it
            // advances rcv_nxt), while SIOCINQ leaves it out.
            let data = after.received.saturating_sub(u64::from(after.fin_received));
            let read = data.saturating_sub(unread);
            return Ok(read > consumed_by_master);
        }
    }
    // Still receiving fast: say "read" rather than risk passing a consumed stream on.
    Ok(true)
}

struct Received {
    received: u64,
    fin_received: bool,
}

/// Where `tcpi_bytes_received` sits in the kernel's `struct tcp_info` (linux/tcp.h, since
/// Linux 4.1): 8 one-byte fields, 24 `__u32` ones, then `tcpi_pacing_rate`,
/// `tcpi_max_pacing_rate` and `tcpi_bytes_acked`. libc's glibc `tcp_info` stops before it,
/// so the struct is read as bytes.
const TCPI_BYTES_RECEIVED: usize = 8 + 24 * 4 + 3 * 8;

fn tcp_bytes_received(fd: BorrowedFd<'_>) -> io::Result<Received> {
    let mut info = [0u8; 256];
    let mut len = info.len() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info`.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let end = TCPI_BYTES_RECEIVED + 8;
    if (len as usize) < end {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "TCP_INFO has no tcpi_bytes_received (Linux before 4.1)",
        ));
    }
    let state = libc::c_int::from(info[0]);
    let received = u64::from_ne_bytes(info[TCPI_BYTES_RECEIVED..end].try_into().expect("8 bytes"));
    Ok(Received {
        received,
        // The states a connection enters once the peer's FIN arrived.
        fin_received: matches!(
            state,
            TCP_CLOSE_WAIT | TCP_LAST_ACK | TCP_CLOSING | TCP_TIME_WAIT
        ),
    })
}

// From linux/tcp_states.h (libc does not export them).
const TCP_TIME_WAIT: libc::c_int = 6;
const TCP_CLOSE_WAIT: libc::c_int = 8;
const TCP_LAST_ACK: libc::c_int = 9;
const TCP_CLOSING: libc::c_int = 11;

/// Bytes queued on `fd` that nobody has read (SIOCINQ, the same request as FIONREAD).
fn bytes_unread(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int into `n`.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(u64::try_from(n).unwrap_or(0))
}

fn to_socket_addr(storage: &libc::sockaddr_storage) -> io::Result<std::net::SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a: &libc::sockaddr_in =
                unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Ok(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a: &libc::sockaddr_in6 =
                unsafe { &*(storage as *const _ as *const libc::sockaddr_in6) };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Ok(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not an IP socket",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::os::fd::AsFd;
    use std::time::{Duration, Instant};

    /// (client, accepted server side) over loopback.
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }

    /// Waits until `n` bytes are queued on `s` (loopback delivers at once, but not
    /// synchronously with the write on every kernel).
    fn wait_unread(s: &TcpStream, n: u64) {
        let end = Instant::now() + Duration::from_secs(10);
        while bytes_unread(s.as_fd()).unwrap() < n {
            assert!(Instant::now() < end, "{n} bytes never arrived");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn unread_data_is_not_consumed() {
        let (mut client, server) = pair();
        assert!(
            !peer_bytes_consumed(server.as_fd(), 0).unwrap(),
            "fresh socket"
        );
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        wait_unread(&server, 18);
        let mut peek = [0u8; 4];
        server.peek(&mut peek).unwrap();
        assert!(!peer_bytes_consumed(server.as_fd(), 0).unwrap());
    }

    #[test]
    fn partly_read_data_is_consumed() {
        let (mut client, mut server) = pair();
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        wait_unread(&server, 18);
        let mut part = [0u8; 3];
        server.read_exact(&mut part).unwrap();
        assert!(peer_bytes_consumed(server.as_fd(), 0).unwrap());
    }

    #[test]
    fn a_proxy_header_the_master_read_is_not_counted() {
        let (mut client, mut server) = pair();
        let header = b"PROXY TCP4 192.0.2.1 192.0.2.2 5000 80\r\n";
        client.write_all(header).unwrap();
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        wait_unread(&server, header.len() as u64 + 18);
        let mut taken = vec![0u8; header.len()];
        server.read_exact(&mut taken).unwrap();
        let by_master = header.len() as u64;
        assert!(!peer_bytes_consumed(server.as_fd(), by_master).unwrap());
        server.read_exact(&mut [0u8; 1]).unwrap();
        assert!(peer_bytes_consumed(server.as_fd(), by_master).unwrap());
    }

    #[test]
    fn a_close_from_the_peer_is_not_data() {
        let (mut client, mut server) = pair();
        client.write_all(b"abc").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let end = Instant::now() + Duration::from_secs(10);
        while !tcp_bytes_received(server.as_fd()).unwrap().fin_received {
            assert!(Instant::now() < end, "the FIN never arrived");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(!peer_bytes_consumed(server.as_fd(), 0).unwrap());
        let mut all = Vec::new();
        server.read_to_end(&mut all).unwrap();
        assert!(peer_bytes_consumed(server.as_fd(), 0).unwrap());
    }
}
