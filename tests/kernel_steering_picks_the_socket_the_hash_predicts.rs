//! The steering program attached to a group of per-slot `SO_REUSEPORT` sockets sends each
//! client to the socket the Rust hash predicts: over many 127/8 sources, after a slot is
//! steered around, after a member was shut down and listened again, and on a dual-stack
//! socket for IPv4 and IPv6 clients.

mod common;
use clutch::sticky::group::SocketGroup;
use clutch::sticky::steering::{bucket, table};
use socket2::{Domain, Socket, Type};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::{AsFd, AsRawFd};

/// The 127/8 source number `n` (never 127.0.0.0 nor a .255).
fn source(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        (n >> 16) as u8,
        (n >> 8) as u8,
        (n % 250 + 2) as u8,
    ))
}

/// Connects from `from` to `to`, and returns the slot whose socket has it queued.
fn accepted_by(group: &SocketGroup, from: IpAddr, to: SocketAddr) -> u32 {
    let domain = Domain::for_address(from.into_sa());
    let client = Socket::new(domain, Type::STREAM, None).unwrap();
    client.bind(&SocketAddr::new(from, 0).into()).unwrap();
    client.connect(&to.into()).unwrap();
    let local = client.local_addr().unwrap().as_socket().unwrap();
    assert!(
        common::wait_until(common::DEADLINE, || {
            (1..=group.len() as u32).any(|s| has_pending(group, s))
        }),
        "nobody got the connection from {from}"
    );
    for slot in 1..=group.len() as u32 {
        let fd = group
            .socket(slot)
            .unwrap()
            .as_fd()
            .try_clone_to_owned()
            .unwrap();
        let listener = TcpListener::from(fd);
        listener.set_nonblocking(true).unwrap();
        if let Ok((_, peer)) = listener.accept() {
            assert_eq!(peer.port(), local.port());
            return slot;
        }
    }
    unreachable!("a socket had it pending")
}

fn has_pending(group: &SocketGroup, slot: u32) -> bool {
    let fd = group.socket(slot).unwrap().as_raw_fd();
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd on a live fd, no waiting.
    unsafe { libc::poll(&mut p, 1, 0) == 1 }
}

trait IntoSa {
    fn into_sa(self) -> SocketAddr;
}
impl IntoSa for IpAddr {
    fn into_sa(self) -> SocketAddr {
        SocketAddr::new(self, 0)
    }
}

fn assert_predicted(group: &SocketGroup, live: &[u32], to: SocketAddr, sources: u32) {
    let owners = table(live);
    for n in 0..sources {
        let from = source(n * 7919);
        let want = owners[bucket(from)];
        assert_eq!(
            accepted_by(group, from, to),
            want,
            "{from} (bucket {}) went elsewhere; live {live:?}, order {:?}",
            bucket(from),
            group.order()
        );
    }
}

#[test]
fn kernel_steering_picks_the_socket_the_hash_predicts() {
    let mut group = SocketGroup::bind("127.0.0.1:0".parse().unwrap(), 4).unwrap();
    let to = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), group.port());
    assert!(group.steer(&[1, 2, 3, 4]).unwrap());
    assert_predicted(&group, &[1, 2, 3, 4], to, 400);

    // Slot 2 down: its buckets go to the others, nobody else's move.
    assert!(group.steer(&[1, 3, 4]).unwrap());
    assert_predicted(&group, &[1, 3, 4], to, 200);

    // A holder shuts slot 1's socket down: the last member takes its place in the kernel;
    // the mirror follows, slot 1 listens again at the end, and the program is re-attached.
    socket2::SockRef::from(group.socket(1).unwrap())
        .shutdown(std::net::Shutdown::Both)
        .unwrap();
    assert_eq!(group.check_members(), vec![1]);
    assert_eq!(group.order(), &[4, 2, 3, 1]);
    assert!(group.steer(&[1, 2, 3, 4]).unwrap());
    assert_predicted(&group, &[1, 2, 3, 4], to, 200);

    // Scaling: a fifth socket joins at the end and gets only the buckets it wins.
    group.grow(5).unwrap();
    assert!(group.steer(&[1, 2, 3, 4, 5]).unwrap());
    assert_predicted(&group, &[1, 2, 3, 4, 5], to, 200);
}

#[test]
fn a_dual_stack_group_steers_ipv4_and_ipv6_clients() {
    let mut group = SocketGroup::bind("[::]:0".parse().unwrap(), 3).unwrap();
    assert!(group.steer(&[1, 2, 3]).unwrap());
    let v4 = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), group.port());
    assert_predicted(&group, &[1, 2, 3], v4, 100);
    let owners = table(&[1, 2, 3]);
    let v6 = SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), group.port());
    let from = IpAddr::V6(std::net::Ipv6Addr::LOCALHOST);
    for _ in 0..5 {
        assert_eq!(accepted_by(&group, from, v6), owners[bucket(from)]);
    }
}
