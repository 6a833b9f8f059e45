//! Consistent percentage bucketing. A targeting key (a user id, a session id) falls in one of
//! [`BUCKETS`] buckets, chosen by the SHA-256 of the flag's name and the key: the same key
//! always falls in the same bucket of a flag, different flags spread it independently, and a
//! rollout to `p` percent lets in the buckets below `p * 100`. Raising `p` only adds buckets,
//! so nobody who was in drops out on the way from 5% to 25%.

use sha2::{Digest, Sha256};

/// Buckets of a flag: a share is resolved to a hundredth of a percent.
pub const BUCKETS: u32 = 10_000;

/// The bucket of `key` for flag `flag`, in `0..BUCKETS`.
pub fn bucket(flag: &str, key: &str) -> u32 {
    let mut hash = Sha256::new();
    hash.update(flag.as_bytes());
    // A separator no name contains, so that ("ab", "c") and ("a", "bc") differ.
    hash.update([0u8]);
    hash.update(key.as_bytes());
    let digest = hash.finalize();
    let first = u64::from_be_bytes(digest[..8].try_into().expect("a SHA-256 has 32 bytes"));
    // 2^64 is not a multiple of 10,000; the bias is below 10^-15.
    (first % u64::from(BUCKETS)) as u32
}

/// Whether `key` is in a rollout of `flag` to `percent` (0 to 100, hundredths honoured).
pub fn in_rollout(flag: &str, key: &str, percent: f64) -> bool {
    let threshold = (percent.clamp(0.0, 100.0) * f64::from(BUCKETS) / 100.0).round() as u32;
    bucket(flag, key) < threshold
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("user-{i}")).collect()
    }

    #[test]
    fn each_step_lets_in_its_share_within_one_percent_of_10000_keys() {
        let keys = keys(10_000);
        for percent in [1.0, 5.0, 25.0, 50.0, 75.0, 100.0] {
            let inside = keys
                .iter()
                .filter(|k| in_rollout("agent-pack-v2", k, percent))
                .count();
            let share = inside as f64 / keys.len() as f64 * 100.0;
            assert!(
                (share - percent).abs() <= 1.0,
                "{percent}%: {inside} of 10,000 keys ({share:.2}%)"
            );
        }
        assert!(keys.iter().all(|k| !in_rollout("agent-pack-v2", k, 0.0)));
    }

    #[test]
    fn whoever_is_in_at_a_step_stays_in_at_every_later_one() {
        let keys = keys(10_000);
        let steps = [5.0, 25.0, 50.0, 100.0];
        for pair in steps.windows(2) {
            for key in &keys {
                if in_rollout("agent-pack-v2", key, pair[0]) {
                    assert!(
                        in_rollout("agent-pack-v2", key, pair[1]),
                        "{key} was in at {}% and out at {}%",
                        pair[0],
                        pair[1]
                    );
                }
            }
        }
    }

    #[test]
    fn a_key_lands_in_the_same_bucket_every_time_and_flags_spread_it_independently() {
        assert_eq!(bucket("f", "alice"), bucket("f", "alice"));
        // Pinned (computed independently: Python's hashlib, the first 8 bytes big-endian mod
        // 10,000): a bucket never moves between runway versions, or users would change sides.
        assert_eq!(bucket("agent-pack-v2", "user-42"), 6963);
        let keys = keys(2_000);
        let both = keys
            .iter()
            .filter(|k| in_rollout("flag-a", k, 50.0) && in_rollout("flag-b", k, 50.0))
            .count();
        // Independent halves overlap on about a quarter.
        assert!((400..600).contains(&both), "{both} of 2,000 in both halves");
        assert_ne!(bucket("ab", "c"), bucket("a", "bc"));
    }
}
