//! Kernel steering: the classic BPF program that picks which slot's listening socket a new
//! connection goes to, and the same choice computed in Rust.
//!
//! The program runs in the kernel on each SYN that reaches the `SO_REUSEPORT` group. It
//! reads the client's source address through `SKF_NET_OFF` offsets (IPv4, or IPv6: an
//! `AF_INET6` dual-stack socket sees IPv4 clients as IPv4 packets), hashes it with
//! murmur3's `fmix32` finalizer (the cBPF ALU is 32 bits wide, so its `mul` wraps exactly
//! as `u32::wrapping_mul` does), keeps the low 8 bits as one of [`BUCKETS`] buckets, and
//! maps the bucket to a socket index through a binary tree of comparisons compiled from a
//! bucket → index table. [`bucket`] is the same computation, so the master (and a test)
//! knows where the kernel sends each client.
//!
//! Which slot owns a bucket is [`table`]: an even share each (256/n, ±1), built so that
//! scaling from n−1 to n slots moves exactly the buckets the new slot takes, and a slot
//! that is down has its buckets spread over the live ones by a rendezvous hash, so only
//! its clients move.
//!
//! Hand-written because no crate compiles cBPF for `SO_ATTACH_REUSEPORT_CBPF`: `socket2`
//! only attaches socket filters, and an eBPF toolchain would need privileges this needs not.

use std::net::IpAddr;

/// Buckets a client address hashes into. 256 keep the program at most ~580 instructions;
/// 1,024 can hit ENOMEM under the default 20 KiB `net.core.optmem_max`.
pub const BUCKETS: usize = 256;

/// One cBPF instruction, as `struct sock_filter`.
pub type Insn = libc::sock_filter;

/// What the program returns for a packet that is neither IPv4 nor IPv6: an index past any
/// group, so the kernel falls back to its own hash.
const FALLBACK: u32 = u32::MAX;

// Classic BPF opcodes (linux/filter.h, linux/bpf_common.h).
const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const ST: u16 = 0x02;
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const MISC: u16 = 0x07;
const W: u16 = 0x00;
const B: u16 = 0x10;
const ABS: u16 = 0x20;
const MEM: u16 = 0x60;
const MUL: u16 = 0x20;
const AND: u16 = 0x50;
const RSH: u16 = 0x70;
const XOR: u16 = 0xa0;
const JA: u16 = 0x00;
const JEQ: u16 = 0x10;
const JGE: u16 = 0x30;
const K: u16 = 0x00;
const X: u16 = 0x08;
const TAX: u16 = 0x00;
/// `SKF_NET_OFF`: loads relative to the network header (the IP header), whatever the
/// socket's own offset.
const NET: i32 = -0x10_0000;

const FMIX_1: u32 = 0x85eb_ca6b;
const FMIX_2: u32 = 0xc2b2_ae35;

/// murmur3's 32-bit finalizer.
pub fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(FMIX_1);
    h ^= h >> 13;
    h = h.wrapping_mul(FMIX_2);
    h ^ (h >> 16)
}

/// The bucket the kernel program puts `client` in. An IPv4-mapped IPv6 address counts as
/// the IPv4 address (what the program sees on a dual-stack socket).
pub fn bucket(client: IpAddr) -> usize {
    let h = match client.to_canonical() {
        IpAddr::V4(v4) => fmix32(u32::from(v4)),
        IpAddr::V6(v6) => {
            let o = v6.octets();
            let word = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            let mut h = fmix32(word(0));
            for i in [4, 8, 12] {
                h = fmix32(h ^ word(i));
            }
            h
        }
    };
    (h as usize) & (BUCKETS - 1)
}

/// Which slot owns each bucket while the `live` slots (ids) take connections; empty when
/// none does.
///
/// The base table for slots 1..=n is built one slot at a time: slot k takes 256/k buckets,
/// one by one from whichever slot holds the most, each time the bucket of that slot it
/// scores highest with. So every slot holds 256/n buckets (±1), and scaling from n−1 to n
/// moves exactly the buckets the new slot takes. `live` picks n (its highest id); the
/// buckets of slots below n that are not live go, each on its own, to the live slot with
/// the highest rendezvous score: only their clients move, spread over the others.
pub fn table(live: &[u32]) -> Vec<u32> {
    let Some(&highest) = live.iter().max() else {
        return Vec::new();
    };
    let mut owners = base(highest);
    for (b, owner) in owners.iter_mut().enumerate() {
        if live.contains(owner) {
            continue;
        }
        let mut best = (0u64, u32::MAX);
        for &s in live {
            let sc = score(b as u32, s);
            // Strictly greater, the lower slot id first on a tie: no input but these.
            if best.1 == u32::MAX || sc > best.0 || (sc == best.0 && s < best.1) {
                best = (sc, s);
            }
        }
        *owner = best.1;
    }
    owners
}

/// The balanced table of slots 1..=n (see [`table`]).
fn base(n: u32) -> Vec<u32> {
    let mut owners = vec![1u32; BUCKETS];
    let mut held = vec![0usize; n as usize + 1];
    held[1] = BUCKETS;
    for k in 2..=n {
        for _ in 0..BUCKETS / k as usize {
            // The fullest slot, the lowest id on a tie.
            let from = (1..k).max_by_key(|&s| (held[s as usize], std::cmp::Reverse(s)));
            let Some(from) = from else { break };
            let bucket = (0..BUCKETS)
                .filter(|&b| owners[b] == from)
                .max_by_key(|&b| score(b as u32, k))
                .expect("the fullest slot holds a bucket");
            owners[bucket] = k;
            held[from as usize] -= 1;
            held[k as usize] += 1;
        }
    }
    owners
}

fn score(bucket: u32, slot: u32) -> u64 {
    let mut z = ((u64::from(bucket) << 32) | u64::from(slot)) ^ 0x6a09_e667_f3bc_c908;
    // splitmix64's finalizer: the scores of different slots behave as independent draws.
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
    Insn { code, jt, jf, k }
}

fn stmt(code: u16, k: u32) -> Insn {
    insn(code, 0, 0, k)
}

fn net(offset: i32) -> u32 {
    (NET + offset) as u32
}

fn fmix(p: &mut Vec<Insn>) {
    for (shift, mul) in [(16, Some(FMIX_1)), (13, Some(FMIX_2)), (16, None)] {
        p.push(stmt(MISC | TAX, 0));
        p.push(stmt(ALU | RSH | K, shift));
        p.push(stmt(ALU | XOR | X, 0));
        if let Some(m) = mul {
            p.push(stmt(ALU | MUL | K, m));
        }
    }
}

/// Compiles the program for `index` (bucket → the socket's position in the group;
/// [`BUCKETS`] entries).
pub fn compile(index: &[u32]) -> Vec<Insn> {
    assert_eq!(index.len(), BUCKETS, "one index per bucket");
    let mut p = Vec::with_capacity(600);
    p.push(stmt(LD | B | ABS, net(0)));
    p.push(stmt(ALU | RSH | K, 4));
    p.push(insn(JMP | JEQ | K, 0, 2, 4)); // IPv4: the next two; else the IPv6 test
    p.push(stmt(LD | W | ABS, net(12)));
    let to_mix = p.len();
    p.push(stmt(JMP | JA, 0)); // patched below
    p.push(insn(JMP | JEQ | K, 1, 0, 6));
    p.push(stmt(RET | K, FALLBACK));
    // IPv6: h = fmix(w0); h = fmix(h ^ w1); h = fmix(h ^ w2); A = h ^ w3.
    p.push(stmt(LD | W | ABS, net(8)));
    for offset in [12, 16, 20] {
        fmix(&mut p);
        p.push(stmt(ST, 0));
        p.push(stmt(LD | W | ABS, net(offset)));
        p.push(stmt(LDX | W | MEM, 0));
        p.push(stmt(ALU | XOR | X, 0));
    }
    let mix = p.len();
    p[to_mix].k = (mix - to_mix - 1) as u32;
    fmix(&mut p);
    p.push(stmt(ALU | AND | K, (BUCKETS - 1) as u32));
    let runs = runs(index);
    tree(&mut p, &runs);
    p
}

/// Consecutive buckets with the same index: (first bucket, index).
fn runs(index: &[u32]) -> Vec<(u32, u32)> {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for (b, &i) in index.iter().enumerate() {
        if runs.last().is_none_or(|&(_, last)| last != i) {
            runs.push((b as u32, i));
        }
    }
    runs
}

/// A binary search over `runs` (A holds the bucket): a `jge` per inner node, with the lower
/// half right after it and the upper half past the lower, and a `ret` per run. The lower
/// half of 256 runs is 255 instructions: the most a jump offset (`u8`) can skip.
fn tree(p: &mut Vec<Insn>, runs: &[(u32, u32)]) {
    if let [(_, index)] = runs {
        p.push(stmt(RET | K, *index));
        return;
    }
    let (low, high) = runs.split_at(runs.len() / 2);
    let node = p.len();
    p.push(insn(JMP | JGE | K, 0, 0, high[0].0));
    tree(p, low);
    let skip = p.len() - node - 1;
    p[node].jt = u8::try_from(skip).expect("a half of at most 128 runs fits a jump");
    tree(p, high);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// A classic BPF interpreter for just what [`compile`] emits, over an IP header.
    fn run(p: &[Insn], ip: &[u8]) -> u32 {
        let (mut a, mut x, mut mem, mut pc) = (0u32, 0u32, [0u32; 16], 0usize);
        let load = |k: u32, n: usize| {
            let at = (k as i32 - NET) as usize;
            ip[at..at + n]
                .iter()
                .fold(0u32, |v, &b| (v << 8) | u32::from(b))
        };
        loop {
            let i = p[pc];
            pc += 1;
            match i.code {
                c if c == LD | B | ABS => a = load(i.k, 1),
                c if c == LD | W | ABS => a = load(i.k, 4),
                c if c == LDX | W | MEM => x = mem[i.k as usize],
                c if c == ST => mem[i.k as usize] = a,
                c if c == MISC | TAX => x = a,
                c if c == ALU | RSH | K => a >>= i.k,
                c if c == ALU | AND | K => a &= i.k,
                c if c == ALU | XOR | X => a ^= x,
                c if c == ALU | MUL | K => a = a.wrapping_mul(i.k),
                c if c == JMP | JA => pc += i.k as usize,
                c if c == JMP | JEQ | K => pc += usize::from(if a == i.k { i.jt } else { i.jf }),
                c if c == JMP | JGE | K => pc += usize::from(if a >= i.k { i.jt } else { i.jf }),
                c if c == RET | K => return i.k,
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    fn ipv4_header(src: Ipv4Addr) -> Vec<u8> {
        let mut h = vec![0u8; 20];
        h[0] = 0x45;
        h[12..16].copy_from_slice(&src.octets());
        h
    }

    fn ipv6_header(src: Ipv6Addr) -> Vec<u8> {
        let mut h = vec![0u8; 40];
        h[0] = 0x60;
        h[8..24].copy_from_slice(&src.octets());
        h
    }

    fn identity() -> Vec<u32> {
        (0..BUCKETS as u32).collect()
    }

    #[test]
    fn the_program_computes_the_rust_bucket() {
        let p = compile(&identity());
        let mut z = 7u32;
        for _ in 0..20_000 {
            z = fmix32(z.wrapping_add(0x9e37_79b9));
            let v4 = Ipv4Addr::from(z);
            assert_eq!(run(&p, &ipv4_header(v4)) as usize, bucket(v4.into()));
            let v6 = Ipv6Addr::from((u128::from(z) << 96) | u128::from(fmix32(z)) << 7 | 1);
            assert_eq!(run(&p, &ipv6_header(v6)) as usize, bucket(v6.into()));
        }
    }

    #[test]
    fn a_mapped_address_is_its_ipv4_address() {
        let v4 = Ipv4Addr::new(127, 1, 2, 3);
        assert_eq!(bucket(v4.into()), bucket(v4.to_ipv6_mapped().into()));
    }

    #[test]
    fn other_packets_fall_back_to_the_kernel_hash() {
        assert_eq!(run(&compile(&identity()), &[0x50; 40]), FALLBACK);
    }

    #[test]
    fn the_worst_table_fits_the_jumps_and_stays_under_600_instructions() {
        let p = compile(&identity());
        assert!(p.len() <= 600, "{} instructions", p.len());
        let alternating: Vec<u32> = (0..BUCKETS as u32).map(|b| b % 2).collect();
        let p = compile(&alternating);
        let ip = ipv4_header(Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(
            run(&p, &ip),
            bucket(Ipv4Addr::new(10, 0, 0, 1).into()) as u32 % 2
        );
    }

    #[test]
    fn the_tree_maps_every_bucket_through_the_table() {
        let t = table(&[1, 2, 3, 4]);
        let index: Vec<u32> = t.iter().map(|s| s - 1).collect();
        let p = compile(&index);
        let mut z = 1u32;
        for _ in 0..5_000 {
            z = fmix32(z.wrapping_add(0x9e37_79b9));
            let v4 = Ipv4Addr::from(z);
            assert_eq!(run(&p, &ipv4_header(v4)), index[bucket(v4.into())]);
        }
    }

    #[test]
    fn buckets_spread_evenly_over_slots() {
        let t = table(&[1, 2, 3, 4]);
        for s in 1..=4 {
            let n = t.iter().filter(|&&x| x == s).count();
            assert_eq!(n, 64, "slot {s} owns {n} buckets");
        }
    }

    #[test]
    fn every_slot_holds_an_even_share() {
        for n in 1..=9u32 {
            let slots: Vec<u32> = (1..=n).collect();
            let t = table(&slots);
            for s in 1..=n {
                let held = t.iter().filter(|&&x| x == s).count();
                assert!(
                    held == BUCKETS / n as usize || held == BUCKETS / n as usize + 1,
                    "slot {s} of {n} holds {held}"
                );
            }
        }
    }

    #[test]
    fn the_last_slot_down_gives_back_exactly_what_it_took() {
        let four = table(&[1, 2, 3, 4]);
        let three = table(&[1, 2, 3]);
        assert!((0..BUCKETS).all(|b| four[b] == three[b] || four[b] == 4));
    }

    #[test]
    fn removing_a_slot_moves_only_its_buckets_and_adding_one_only_what_it_wins() {
        let four = table(&[1, 2, 3, 4]);
        let without_2 = table(&[1, 3, 4]);
        for b in 0..BUCKETS {
            if four[b] != 2 {
                assert_eq!(four[b], without_2[b], "bucket {b} moved");
            }
            assert_ne!(without_2[b], 2);
        }
        let five = table(&[1, 2, 3, 4, 5]);
        let moved = (0..BUCKETS).filter(|&b| four[b] != five[b]).count();
        assert!((0..BUCKETS).all(|b| four[b] == five[b] || five[b] == 5));
        assert_eq!(moved, BUCKETS / 5, "{moved} buckets moved");
        // Slot 2 down spreads its buckets over all three others.
        for s in [1, 3, 4] {
            let got = (0..BUCKETS)
                .filter(|&b| four[b] == 2 && without_2[b] == s)
                .count();
            assert!(got >= 10, "slot {s} took {got} of slot 2's buckets");
        }
    }
}
