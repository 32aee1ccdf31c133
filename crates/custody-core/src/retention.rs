use crate::CoreError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// How long data may be kept, in whole days (1 day to 100 years).
///
/// Written as `<n>d`, `<n>w` or `<n>y` (a year counts 365 days), e.g. `90d`, `6w`, `7y`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RetentionPeriod {
    days: u32,
}

const MAX_DAYS: u64 = 36_500;

impl RetentionPeriod {
    /// A period of `days` days.
    pub fn from_days(days: u32) -> Result<Self, CoreError> {
        if days == 0 || u64::from(days) > MAX_DAYS {
            return Err(CoreError::invalid("retention", format!("`{days}` days is outside 1 to {MAX_DAYS} days")));
        }
        Ok(Self { days })
    }

    /// Parses `90d`, `6w` or `7y`.
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        let err = || CoreError::invalid("retention", format!("`{s}` is not a period such as `90d`, `6w` or `7y`"));
        if !s.is_ascii() {
            return Err(err());
        }
        let (num, unit) = s.split_at(s.len().checked_sub(1).ok_or_else(err)?);
        if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) || num.len() > 6 {
            return Err(err());
        }
        let n: u64 = num.parse().map_err(|_| err())?;
        let days = match unit {
            "d" => n,
            "w" => n * 7,
            "y" => n * 365,
            _ => return Err(err()),
        };
        if days == 0 || days > MAX_DAYS {
            return Err(CoreError::invalid("retention", format!("`{s}` is outside 1 day to 100 years")));
        }
        Self::from_days(u32::try_from(days).map_err(|_| err())?)
    }

    /// The period in days.
    pub fn days(self) -> u32 {
        self.days
    }
}

impl fmt::Display for RetentionPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}d", self.days)
    }
}

crate::string_schema!(RetentionPeriod, "a period: `<n>d`, `<n>w` or `<n>y`", "365d");

crate::string_conversions!(RetentionPeriod, RetentionPeriod::parse);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_units() {
        assert_eq!(RetentionPeriod::parse("90d").unwrap().days(), 90);
        assert_eq!(RetentionPeriod::parse("6w").unwrap().days(), 42);
        assert_eq!(RetentionPeriod::parse("7y").unwrap().days(), 2555);
        for bad in ["", "d", "0d", "101y", "-1d", "1.5y", "12", "12m", " 1d", "99999999999d", "1é", "é"] {
            assert!(RetentionPeriod::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn display_roundtrips(days in 1u32..=36_500) {
            let r = RetentionPeriod::from_days(days).unwrap();
            prop_assert_eq!(RetentionPeriod::parse(&r.to_string()).unwrap(), r);
        }

        #[test]
        fn never_panics(s in ".{0,12}") {
            let _ = RetentionPeriod::parse(&s);
        }
    }
}
