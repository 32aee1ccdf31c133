//! Arbitrary-length decimal numbers for version components.
//!
//! Version components are compared numerically but may be longer than any machine integer
//! (date-based or hash-like components exist in the wild); keeping the digits and comparing by
//! length first avoids both overflow and a parse failure that would make a version
//! "uncomparable" for no good reason.

use std::cmp::Ordering;

/// A non-negative integer kept as its decimal digits, leading zeros removed (zero is empty).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub(crate) struct Digits(String);

impl Digits {
    /// From a non-empty string of ASCII digits (the caller checked that).
    pub(crate) fn new(s: &str) -> Digits {
        Digits(s.trim_start_matches('0').to_string())
    }

    /// The decimal digits (`0` for zero).
    pub(crate) fn as_str(&self) -> &str {
        if self.0.is_empty() { "0" } else { &self.0 }
    }

    /// Whether the number is zero.
    pub(crate) fn is_zero(&self) -> bool {
        self.0.is_empty()
    }
}

impl Ord for Digits {
    fn cmp(&self, other: &Self) -> Ordering {
        // No leading zeros, so a longer string is a larger number.
        self.0.len().cmp(&other.0.len()).then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for Digits {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Length of the run of ASCII digits at the start of `s`.
pub(crate) fn digit_run(s: &[u8]) -> usize {
    s.iter().take_while(|b| b.is_ascii_digit()).count()
}
