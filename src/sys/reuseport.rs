//! `SO_ATTACH_REUSEPORT_CBPF`: the classic BPF program that picks a socket of an
//! `SO_REUSEPORT` group. Neither socket2 nor nix attach one (socket2's `attach_filter` is
//! `SO_ATTACH_FILTER`, a per-socket packet filter), and libc names the option only on
//! Android.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `SO_ATTACH_REUSEPORT_CBPF` (asm-generic/socket.h), since Linux 4.5.
const SO_ATTACH_REUSEPORT_CBPF: libc::c_int = 51;

/// Attaches `program` to the reuseport group `member` is in. `member` must be listening
/// already: attached to a socket not yet in a group, the program makes a group of its own,
/// and that socket's `listen()` then fails with EADDRINUSE.
pub fn attach_cbpf(member: BorrowedFd<'_>, program: &[libc::sock_filter]) -> io::Result<()> {
    let len = u16::try_from(program.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "program too long"))?;
    let prog = libc::sock_fprog {
        len,
        // The kernel copies the program and never writes through this pointer.
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: setsockopt reads one sock_fprog, and `len` instructions through it, while
    // `prog` and `program` are alive.
    let rc = unsafe {
        libc::setsockopt(
            member.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_ATTACH_REUSEPORT_CBPF,
            (&raw const prog).cast(),
            size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether the socket listens (`SO_ACCEPTCONN`): a member of a reuseport group that was shut
/// down by any process holding it reads false, and has left the group.
pub fn is_listening(socket: BorrowedFd<'_>) -> io::Result<bool> {
    socket2::SockRef::from(&socket).is_listener()
}
