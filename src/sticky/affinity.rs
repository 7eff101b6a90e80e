//! Sticky-mode worker choice: which app worker slot serves a client address.
//!
//! Rendezvous (highest-random-weight) hashing over slot ids: each live slot is scored with
//! `weight(client, slot_id)` and the highest score wins. Keying on the slot id (stable across
//! worker restarts) rather than a pid or a position in some map means a restarted worker gets
//! back exactly the clients it had, and while a slot is down only its own clients move,
//! spread over the remaining slots.
//!
//! The hash is fixed and written here rather than taken from `std` so that the choice is the
//! same in every process and every release: a client must land on the same slot after the
//! master restarts, and `RandomState` is seeded per process.
//!
//! # Caveats
//! The hash is not keyed with a secret, so a client that can pick its source addresses can
//! pick its slot. Stickiness is a routing aid, not an isolation boundary.

use std::net::IpAddr;

/// Keeps IPv4 and IPv6 keys apart, so that an IPv4 address and the IPv6 address whose high
/// half happens to hold the same bits cannot collide by construction.
const V4_TAG: u64 = 0x243f_6a88_85a3_08d3;
const V6_TAG: u64 = 0x1319_8a2e_0370_7344;
/// Keeps the slot-id domain apart from the address domain; without it slot 0 would add
/// nothing to the key, because `mix(0) == 0`.
const SLOT_SEED: u64 = 0xa409_3822_299f_31d0;

/// Picks the slot for `client` among the slots whose `live[i]` is true; slot id of index i is i+1.
/// Returns the slot id (1-based), or None when no slot is live.
pub fn pick_slot(client: IpAddr, live: &[bool]) -> Option<u32> {
    let key = address_key(client);
    let mut best: Option<(u64, u32)> = None;
    for (slot_id, _) in (1u32..).zip(live).filter(|(_, up)| **up) {
        let w = slot_weight(key, slot_id);
        // Strictly greater: on an (astronomically rare) tie the lower slot id wins, so the
        // answer never depends on anything but the inputs.
        if best.is_none_or(|(best_w, _)| w > best_w) {
            best = Some((w, slot_id));
        }
    }
    best.map(|(_, slot_id)| slot_id)
}

/// The weight of `slot_id` for `client` (exposed for tests and diagnostics).
pub fn weight(client: IpAddr, slot_id: u32) -> u64 {
    slot_weight(address_key(client), slot_id)
}

/// Hashes the address once per connection; `pick_slot` then only pays one mix per slot.
fn address_key(client: IpAddr) -> u64 {
    // Dual-stack listeners report IPv4 clients as `::ffff:a.b.c.d`; canonicalising keeps such
    // a client on the same slot whichever way it reached us.
    match client.to_canonical() {
        IpAddr::V4(v4) => mix(u64::from(u32::from(v4)) ^ V4_TAG),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let high = (bits >> 64) as u64;
            let low = bits as u64;
            // Chained so that both halves reach every output bit: IPv6 clients often differ
            // only in the low half (one /64) or only in the high half (privacy addresses).
            mix(mix(high ^ V6_TAG).wrapping_add(low))
        }
    }
}

fn slot_weight(key: u64, slot_id: u32) -> u64 {
    mix(key ^ mix(u64::from(slot_id).wrapping_add(SLOT_SEED)))
}

/// The splitmix64 finalizer: a bijection on u64 with full avalanche, so weights of different
/// slots for one address behave as independent uniform draws.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const SAMPLES: usize = 100_000;

    /// Deterministic test input generator (splitmix64), so a failure reproduces exactly.
    struct Prng(u64);

    impl Prng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            mix(self.0)
        }

        fn ipv4(&mut self) -> IpAddr {
            IpAddr::V4(Ipv4Addr::from(self.next() as u32))
        }

        fn ipv6(&mut self) -> IpAddr {
            let bits = (u128::from(self.next()) << 64) | u128::from(self.next());
            IpAddr::V6(Ipv6Addr::from(bits))
        }
    }

    fn assert_uniform(mut address: impl FnMut() -> IpAddr) {
        let live = [true; 4];
        let mut counts = [0usize; 4];
        for _ in 0..SAMPLES {
            let slot = pick_slot(address(), &live).expect("all slots are live");
            counts[slot as usize - 1] += 1;
        }
        // 25% ± 2% of the samples.
        let (low, high) = (SAMPLES * 23 / 100, SAMPLES * 27 / 100);
        for (i, &count) in counts.iter().enumerate() {
            assert!(
                (low..=high).contains(&count),
                "slot {} got {count} of {SAMPLES}: {counts:?}",
                i + 1
            );
        }
    }

    #[test]
    fn uniform_over_random_ipv4_four_slots() {
        let mut prng = Prng(1);
        assert_uniform(|| prng.ipv4());
    }

    #[test]
    fn uniform_over_random_ipv6_four_slots() {
        let mut prng = Prng(2);
        assert_uniform(|| prng.ipv6());
    }

    #[test]
    fn ipv4_mapped_ipv6_counts_as_ipv4() {
        let mut prng = Prng(3);
        for _ in 0..1_000 {
            let IpAddr::V4(v4) = prng.ipv4() else {
                unreachable!()
            };
            let mapped = IpAddr::V6(v4.to_ipv6_mapped());
            for slot_id in 1..=8 {
                assert_eq!(weight(IpAddr::V4(v4), slot_id), weight(mapped, slot_id));
            }
            assert_eq!(
                pick_slot(IpAddr::V4(v4), &[true; 8]),
                pick_slot(mapped, &[true; 8])
            );
        }
    }

    #[test]
    fn same_address_always_same_slot() {
        let mut prng = Prng(4);
        for _ in 0..1_000 {
            let client = prng.ipv6();
            let first = pick_slot(client, &[true; 5]);
            for _ in 0..10 {
                assert_eq!(pick_slot(client, &[true; 5]), first);
            }
        }
        // Pinned values: a change here reshuffles every client across a master upgrade, so it
        // must be deliberate.
        let client = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(weight(client, 1), PINNED_V4_SLOT_1);
        assert_eq!(pick_slot(client, &[true; 4]), Some(PINNED_V4_PICK));
    }

    const PINNED_V4_SLOT_1: u64 = 0xd7e3_57fc_99ae_0afb;
    const PINNED_V4_PICK: u32 = 2;

    #[test]
    fn down_slot_clients_move_and_return() {
        let mut prng = Prng(5);
        let clients: Vec<IpAddr> = (0..10_000).map(|_| prng.ipv4()).collect();
        let all_live = [true; 4];
        let slot_2_down = [true, false, true, true];
        let before: Vec<Option<u32>> = clients.iter().map(|&c| pick_slot(c, &all_live)).collect();

        let mut moved_to = [0usize; 4];
        for (&client, &was) in clients.iter().zip(&before) {
            let now = pick_slot(client, &slot_2_down);
            if was == Some(2) {
                let now = now.expect("three slots are live");
                assert_ne!(now, 2, "{client} stayed on the down slot");
                moved_to[now as usize - 1] += 1;
            } else {
                assert_eq!(now, was, "{client} moved although its slot stayed up");
            }
        }
        let moved: usize = moved_to.iter().sum();
        assert!(moved > 2_000, "slot 2 had only {moved} clients");
        // The displaced clients spread over all the other slots instead of piling onto one.
        for slot_id in [1, 3, 4] {
            let share = moved_to[slot_id - 1];
            assert!(
                share * 4 > moved,
                "slot {slot_id} took {share} of {moved} moved clients"
            );
        }

        let after: Vec<Option<u32>> = clients.iter().map(|&c| pick_slot(c, &all_live)).collect();
        assert_eq!(after, before);
    }

    #[test]
    fn no_live_slot_gives_none() {
        let client = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
        assert_eq!(pick_slot(client, &[]), None);
        assert_eq!(pick_slot(client, &[false; 4]), None);
    }
}
