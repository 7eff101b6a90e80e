//! `sendmsg`/`recvmsg` with file descriptors attached (`SCM_RIGHTS`), for the channel.
//!
//! Hand-written because the channel needs both directions on a tokio socket, with the
//! receive side reusing one control buffer; the calls are small enough to own.

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Most descriptors accepted in one `recvmsg`; more are closed by the kernel (MSG_CTRUNC).
pub const MAX_FDS_PER_READ: usize = 16;

const fn cmsg_space(fds: usize) -> usize {
    // CMSG_SPACE is not const in libc; this mirrors it for 8-byte alignment.
    let data = fds * size_of::<RawFd>();
    let hdr = size_of::<libc::cmsghdr>();
    hdr + data.div_ceil(8) * 8
}

/// Sends `bytes` with `fds` attached to the first byte. Returns how many bytes went out
/// (the descriptors go with the first byte, so a short write still delivered them).
pub fn send_with_fds(sock: RawFd, bytes: &[u8], fds: &[RawFd]) -> io::Result<usize> {
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    let mut control = [0u64; cmsg_space(MAX_FDS_PER_READ) / 8 + 1];
    assert!(fds.len() <= MAX_FDS_PER_READ);
    // SAFETY: msghdr is plain data; every pointer set below outlives the sendmsg call.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        let data_len = std::mem::size_of_val(fds);
        msg.msg_control = control.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE/CMSG_LEN only compute sizes.
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(data_len as u32) } as _;
        // SAFETY: the control buffer is large enough for one cmsg of `fds`, as sized above.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(data_len as u32) as _;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(cmsg).cast(), fds.len());
        }
    }
    // SAFETY: msg points at valid buffers for the duration of the call.
    let n = unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

// The `as _` casts: msghdr's and cmsghdr's length fields are `size_t` in glibc and
// `socklen_t` in musl (the static build of examples/Dockerfile).

/// Receives into `buf`; descriptors that came with these bytes are pushed onto `fds`
/// (close-on-exec). `Ok(0)` is end of file.
pub fn recv_with_fds(sock: RawFd, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = [0u64; cmsg_space(MAX_FDS_PER_READ) / 8 + 1];
    // SAFETY: msghdr is plain data; the pointers set below outlive the recvmsg call.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&control) as _;
    // SAFETY: msg points at valid buffers for the duration of the call.
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if msg.msg_controllen > 0 {
        // SAFETY: the kernel filled `control` with well-formed cmsgs up to msg_controllen.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                    let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                    let len = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                    for i in 0..len / size_of::<RawFd>() {
                        let fd = std::ptr::read_unaligned(data.add(i));
                        fds.push(OwnedFd::from_raw_fd(fd));
                    }
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
    }
    Ok(n as usize)
}

/// Sets close-on-exec on an fd the process inherited (so workers do not inherit it in turn).
pub fn set_cloexec(fd: &impl AsRawFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd we own, with integer arguments only.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    #[test]
    fn fd_travels_with_the_bytes() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut x, y) = UnixStream::pair().unwrap();
        send_with_fds(a.as_raw_fd(), b"line\n", &[y.as_raw_fd()]).unwrap();
        drop(y);
        let mut buf = [0u8; 64];
        let mut fds = Vec::new();
        let n = recv_with_fds(b.as_raw_fd(), &mut buf, &mut fds).unwrap();
        assert_eq!(&buf[..n], b"line\n");
        assert_eq!(fds.len(), 1);
        let mut got = UnixStream::from(fds.pop().unwrap());
        x.write_all(b"hi").unwrap();
        let mut two = [0u8; 2];
        got.read_exact(&mut two).unwrap();
        assert_eq!(&two, b"hi");
    }
}
