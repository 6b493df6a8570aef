//! Switches: integer feature flags that ride in a request's context and follow it through every downstream call.
//!
//! On the wire a job's `context.switches` is a list of integers. A caller turns switches on for one call (or for
//! every call a client makes); a server checks them with [`SwitchSet::is_active`], and a server's calls to other
//! services carry the same switches onwards.
//!
//! Switch values are usually named constants or enum variants; anything that converts into an `i64` works, and
//! [`Switch`] lets an enum say its own value. A set holds any integer the wire carries ([`Int`], up to 2⁶⁴−1, as
//! PySOA accepts any integer), so a switch no Rust name can reach is still carried onwards.
//!
//! ```
//! use rsoa_switches::{Switch, SwitchSet};
//!
//! #[derive(Clone, Copy)]
//! enum Feature {
//!     NewCheckout = 17,
//!     DarkMode = 42,
//! }
//!
//! impl Switch for Feature {
//!     fn value(&self) -> i64 {
//!         *self as i64
//!     }
//! }
//!
//! let switches: SwitchSet = [17, 5].into_iter().collect();
//! assert!(switches.is_active(Feature::NewCheckout));
//! assert!(!switches.is_active(Feature::DarkMode));
//! assert!(switches.is_active(5));
//! assert_eq!(switches.to_vec(), [5, 17]);
//! ```

use std::fmt;

pub use rsoa_protocol::Int;

/// Something that names a switch.
pub trait Switch {
    /// The switch's integer value, as it appears on the wire.
    fn value(&self) -> i64;
}

macro_rules! switch_for_int {
    ($($t:ty),*) => {$(
        impl Switch for $t {
            fn value(&self) -> i64 {
                i64::from(*self)
            }
        }
    )*};
}
switch_for_int!(i8, i16, i32, i64, u8, u16, u32);

impl<S: Switch + ?Sized> Switch for &S {
    fn value(&self) -> i64 {
        (**self).value()
    }
}

/// A set of active switches.
///
/// Sets are small (a handful of flags), so they are kept as a sorted, de-duplicated vector: membership is a
/// binary search and the wire form comes out in a stable order.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct SwitchSet(Vec<Int>);

impl SwitchSet {
    /// No switches.
    pub fn new() -> SwitchSet {
        SwitchSet::default()
    }

    /// Whether `switch` is on. Zero is a switch like any other (PySOA's switched actions could never select it).
    pub fn is_active(&self, switch: impl Switch) -> bool {
        self.0.binary_search(&Int::from(switch.value())).is_ok()
    }

    /// Turns a switch on.
    pub fn insert(&mut self, switch: impl Switch) {
        self.insert_value(Int::from(switch.value()));
    }

    /// Turns a switch on by its wire value, which may be beyond `i64` (no [`Switch`] names those).
    pub fn insert_value(&mut self, value: Int) {
        if let Err(i) = self.0.binary_search(&value) {
            self.0.insert(i, value);
        }
    }

    /// The set of a request's `context.switches`, exactly as they came.
    pub fn from_values(values: impl IntoIterator<Item = Int>) -> SwitchSet {
        let mut values: Vec<Int> = values.into_iter().collect();
        values.sort_unstable();
        values.dedup();
        SwitchSet(values)
    }

    /// Turns a switch off.
    pub fn remove(&mut self, switch: impl Switch) {
        if let Ok(i) = self.0.binary_search(&Int::from(switch.value())) {
            self.0.remove(i);
        }
    }

    /// Adds every switch of `other`.
    pub fn union_with(&mut self, other: &SwitchSet) {
        for &s in &other.0 {
            self.insert_value(s);
        }
    }

    /// The number of switches on.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no switch is on.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The switches in ascending order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Int> + '_ {
        self.0.iter().copied()
    }

    /// The switches in ascending order, as the context's `switches` list.
    pub fn to_vec(&self) -> Vec<Int> {
        self.0.clone()
    }

    /// The switches in ascending order.
    pub fn as_slice(&self) -> &[Int] {
        &self.0
    }
}

impl<S: Switch> FromIterator<S> for SwitchSet {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> SwitchSet {
        SwitchSet::from_values(iter.into_iter().map(|s| Int::from(s.value())))
    }
}

impl<S: Switch> Extend<S> for SwitchSet {
    fn extend<I: IntoIterator<Item = S>>(&mut self, iter: I) {
        for s in iter {
            self.insert(s);
        }
    }
}

impl From<&[i64]> for SwitchSet {
    fn from(values: &[i64]) -> SwitchSet {
        values.iter().copied().collect()
    }
}

impl From<Vec<i64>> for SwitchSet {
    fn from(values: Vec<i64>) -> SwitchSet {
        values.into_iter().collect()
    }
}

impl fmt::Debug for SwitchSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(&self.0).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_a_switch() {
        let set: SwitchSet = [0].into_iter().collect();
        assert!(set.is_active(0));
    }

    #[test]
    fn switches_beyond_i64_are_kept_in_order() {
        let huge = Int::from(u64::MAX);
        let set = SwitchSet::from_values([huge, Int::from(-1), Int::from(3), huge]);
        assert_eq!(set.to_vec(), [Int::from(-1), Int::from(3), huge]);
        assert!(set.is_active(3) && set.is_active(-1));
    }

    #[test]
    fn union_deduplicates() {
        let mut a: SwitchSet = [3, 1, 3].into_iter().collect();
        let b: SwitchSet = [2, 3].into_iter().collect();
        a.union_with(&b);
        assert_eq!(a.to_vec(), [1, 2, 3]);
        a.remove(2);
        a.remove(99);
        assert_eq!(a.as_slice(), [1, 3]);
        a.extend([7_u8]);
        assert_eq!(a.len(), 3);
    }
}
