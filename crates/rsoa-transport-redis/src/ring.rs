//! Which Redis master holds which queue, exactly as PySOA chooses (wire-spec §11).
//!
//! Request queues (no `!` in the key) go round-robin over a random permutation of the masters: any master may
//! hold a request, and servers watch them all. Reply queues (a `!` in the key) are pinned by hashing, so that a
//! client and a server agree on the master without talking: CRC-32 of the full key, its low 12 bits, scaled to the
//! ring in floating point.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The prefix PySOA puts before every queue name.
pub const KEY_PREFIX: &str = "pysoa:";

/// The Redis key of a service's request queue: `pysoa:service.<name>`.
pub fn service_queue_key(service: &str) -> String {
    format!("{KEY_PREFIX}service.{service}")
}

/// The master index PySOA's hash assigns to a reply key, for a ring of `masters` masters.
///
/// ```
/// use rsoa_transport_redis::reply_master_index;
///
/// // The vector of wire-spec §11.2.
/// let key = "pysoa:service.echo.0123456789abcdef0123456789abcdef!000000000001";
/// let indexes: Vec<usize> = (1..=8).map(|n| reply_master_index(key, n)).collect();
/// assert_eq!(indexes, [0, 0, 0, 1, 1, 1, 2, 2]);
/// ```
pub fn reply_master_index(key: &str, masters: usize) -> usize {
    if masters <= 1 {
        return 0;
    }
    let low12 = f64::from(crc32fast::hash(key.as_bytes()) & 0xfff);
    // The division through 4096/n in doubles is what PySOA computes; the integer shortcut differs for some rings.
    let index = (low12 / (4096.0 / masters as f64)) as usize;
    index.min(masters - 1)
}

/// The round-robin order for request queues: a random permutation, cycled forever.
#[derive(Debug)]
pub(crate) struct RoundRobin {
    order: Vec<usize>,
    next: AtomicUsize,
}

impl RoundRobin {
    pub(crate) fn new(masters: usize) -> RoundRobin {
        let mut order: Vec<usize> = (0..masters.max(1)).collect();
        // A Fisher-Yates shuffle with a per-process random seed; only spreading the load matters here.
        let mut seed = uuid::Uuid::new_v4().as_u64_pair().0 | 1;
        for i in (1..order.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            order.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        RoundRobin {
            order,
            next: AtomicUsize::new(0),
        }
    }

    pub(crate) fn next(&self) -> usize {
        self.order[self.next.fetch_add(1, Ordering::Relaxed) % self.order.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_wire_spec_vectors() {
        let cases: [(&str, [usize; 8]); 4] = [
            (
                "pysoa:service.echo.0123456789abcdef0123456789abcdef!000000000001",
                [0, 0, 0, 1, 1, 1, 2, 2],
            ),
            (
                "pysoa:service.user.5121d991783643e5a133fd5b398d4fa4!7fbf655e3b80",
                [0, 0, 0, 1, 1, 1, 1, 2],
            ),
            (
                "pysoa:service.example.c5092291f7ae41d7b3a0c9a08e53e7c4!7efce7e0bb80",
                [0, 0, 0, 0, 0, 0, 0, 0],
            ),
            ("test_hashed_send_receive!", [0, 0, 1, 1, 1, 2, 2, 3]),
        ];
        for (key, expected) in cases {
            let got: Vec<usize> = (1..=8).map(|n| reply_master_index(key, n)).collect();
            assert_eq!(got, expected, "{key}");
        }
    }

    #[test]
    fn float_division_not_the_integer_shortcut() {
        // wire-spec §11.2: for n = 186 and v = 2048, doubles give 92 where (v * n) >> 12 gives 93.
        let (v, n) = (2048.0_f64, 186_usize);
        assert_eq!((v / (4096.0 / n as f64)) as usize, 92);
        assert_eq!((2048 * n) >> 12, 93);
    }

    #[test]
    fn round_robin_visits_every_master() {
        let rr = RoundRobin::new(5);
        let mut seen: Vec<usize> = (0..5).map(|_| rr.next()).collect();
        seen.sort_unstable();
        assert_eq!(seen, [0, 1, 2, 3, 4]);
        assert_eq!(RoundRobin::new(0).next(), 0);
    }

    #[test]
    fn keys() {
        assert_eq!(service_queue_key("echo"), "pysoa:service.echo");
    }
}
