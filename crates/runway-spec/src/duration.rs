//! Durations as people write them in `runway.toml`: `"500ms"`, `"30s"`, `"1m30s"`.
//!
//! TOML has no duration type, and bare integers are ambiguous (seconds? milliseconds?),
//! so runway takes a quoted string made of one or more `<number><unit>` parts with no
//! spaces: `"1h30m"`, `"1.5s"`. Units are `h`, `m`, `s`, `ms`, `us` (or `µs`) and `ns`.
//!
//! [`Dur`] wraps [`Duration`] so the spec can print and serialize durations in the same
//! form: its `Display` output is canonical (largest units first, zero parts omitted) and
//! always parses back to the exact same value, which keeps the JSON form of a spec
//! readable and round-trip exact.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Units accepted by [`parse_duration`], with their length in nanoseconds.
const UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", NANOS_PER_SEC),
    ("m", 60 * NANOS_PER_SEC),
    ("h", 3_600 * NANOS_PER_SEC),
];

/// Parts used by the canonical form, largest first.
const CANONICAL: &[(&str, u128)] = &[
    ("h", 3_600 * NANOS_PER_SEC),
    ("m", 60 * NANOS_PER_SEC),
    ("s", NANOS_PER_SEC),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

/// Fraction digits beyond this are below nanosecond precision for every unit; they are
/// still checked to be digits but otherwise ignored (which also bounds the arithmetic).
const MAX_FRACTION_DIGITS: usize = 18;

/// Parses a duration such as `"500ms"`, `"30s"`, `"5m"`, `"1h"`, `"1m30s"` or `"1.5s"`.
///
/// The error is a sentence meant for the user, e.g. for `"5 minutes"`:
/// `durations cannot contain spaces`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if s.is_empty() {
        return Err("the duration is empty".into());
    }
    if s.starts_with(['-', '+']) {
        return Err("durations cannot have a sign".into());
    }
    if s.contains(char::is_whitespace) {
        return Err("durations cannot contain spaces".into());
    }

    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let (whole, fraction, after_number) = split_number(rest)?;
        let (unit_ns, after_unit) =
            unit_at(after_number, &rest[..rest.len() - after_number.len()])?;

        let mut part = whole
            .parse::<u128>()
            .ok()
            .and_then(|w| w.checked_mul(unit_ns))
            .ok_or_else(too_large)?;
        let fraction = &fraction[..fraction.len().min(MAX_FRACTION_DIGITS)];
        if !fraction.is_empty() {
            let digits: u128 = fraction.parse().map_err(|_| too_large())?;
            part += digits * unit_ns / 10u128.pow(fraction.len() as u32);
        }
        total = total.checked_add(part).ok_or_else(too_large)?;
        rest = after_unit;
    }

    if total > MAX_NANOS {
        return Err(too_large());
    }
    let secs = u64::try_from(total / NANOS_PER_SEC).map_err(|_| too_large())?;
    Ok(Duration::new(secs, (total % NANOS_PER_SEC) as u32))
}

/// The longest duration runway takes: a year. Longer ones are mistakes (a timeout of 584
/// billion years once overflowed the clock arithmetic of a running deployment), and every
/// sum of a deadline and the current time stays far from overflowing.
const MAX_NANOS: u128 = 366 * 24 * 3_600 * NANOS_PER_SEC;

fn too_large() -> String {
    "the duration is too large: runway takes durations up to 366 days (\"8784h\")".into()
}

/// Splits `"1.5s…"` into (`"1"`, `"5"`, `"s…"`).
fn split_number(s: &str) -> Result<(&str, &str, &str), String> {
    let whole_len = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if whole_len == 0 {
        return Err(format!(
            "expected a number at `{s}` (write e.g. \"30s\" or \"1m30s\")"
        ));
    }
    let (whole, rest) = s.split_at(whole_len);
    let Some(after_dot) = rest.strip_prefix('.') else {
        return Ok((whole, "", rest));
    };
    let fraction_len = after_dot
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(after_dot.len());
    if fraction_len == 0 {
        return Err(format!("expected digits after `{whole}.`"));
    }
    let (fraction, rest) = after_dot.split_at(fraction_len);
    Ok((whole, fraction, rest))
}

/// Reads the unit at the start of `s`; `number` is the text it applies to (for messages).
fn unit_at<'a>(s: &'a str, number: &str) -> Result<(u128, &'a str), String> {
    let word_len = s.find(|c: char| c.is_ascii_digit()).unwrap_or(s.len());
    let word = &s[..word_len];
    if word.is_empty() {
        return Err(format!(
            "`{number}` has no unit; add one of ms, s, m, h (e.g. \"{number}s\")"
        ));
    }
    UNITS
        .iter()
        .find(|(name, _)| *name == word)
        .map(|&(_, ns)| (ns, &s[word_len..]))
        .ok_or_else(|| format!("unknown unit `{word}`; use one of ms, s, m, h (or us, ns)"))
}

/// A [`Duration`] that reads and prints in runway's duration syntax.
///
/// `Display` gives the canonical short form (`1s`, `500ms`, `2m`, `1h30m`, `0s`), and
/// serde (de)serializes it as that string.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dur(pub Duration);

impl Dur {
    /// The zero duration, `0s`.
    pub const ZERO: Dur = Dur(Duration::ZERO);

    /// A whole number of seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Dur(Duration::from_secs(secs))
    }

    /// A whole number of milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        Dur(Duration::from_millis(millis))
    }

    /// The wrapped [`Duration`].
    pub const fn get(self) -> Duration {
        self.0
    }

    /// Whether this is the zero duration.
    pub const fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl From<Duration> for Dur {
    fn from(d: Duration) -> Self {
        Dur(d)
    }
}

impl From<Dur> for Duration {
    fn from(d: Dur) -> Self {
        d.0
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0.as_nanos();
        if rest == 0 {
            return f.write_str("0s");
        }
        for &(unit, ns) in CANONICAL {
            let count = rest / ns;
            if count > 0 {
                write!(f, "{count}{unit}")?;
                rest %= ns;
            }
        }
        Ok(())
    }
}

impl FromStr for Dur {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s).map(Dur)
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A duration is a string in the API as in runway.toml.
#[cfg(feature = "schema")]
impl schemars::JsonSchema for Dur {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A duration such as \"30s\", \"1m30s\" or \"2h\".",
            "examples": ["30s", "1m30s"]
        })
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl de::Visitor<'_> for Visitor {
            type Value = Dur;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"30s\" or \"1m30s\"")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<Dur, E> {
                s.parse()
                    .map_err(|e| E::custom(format_args!("invalid duration {s:?}: {e}")))
            }
        }

        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn accepts_the_documented_forms() {
        let table = [
            ("500ms", ms(500)),
            ("30s", ms(30_000)),
            ("5m", ms(300_000)),
            ("1h", ms(3_600_000)),
            ("1m30s", ms(90_000)),
            ("1.5s", ms(1_500)),
            ("1h30m", ms(5_400_000)),
            ("0s", Duration::ZERO),
            ("0.25m", ms(15_000)),
            ("250us", Duration::from_micros(250)),
            ("250µs", Duration::from_micros(250)),
            ("7ns", Duration::from_nanos(7)),
            ("1s500ms", ms(1_500)),
            ("0.0000000015s", Duration::from_nanos(1)),
        ];
        for (text, want) in table {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn rejects_malformed_input() {
        let table = [
            ("5 minutes", "spaces"),
            ("5", "no unit"),
            ("", "empty"),
            ("-1s", "sign"),
            ("+1s", "sign"),
            ("5 m", "spaces"),
            ("5minutes", "unknown unit `minutes`"),
            ("s", "expected a number"),
            ("1.s", "digits after"),
            (".5s", "expected a number"),
            ("1s5", "no unit"),
            ("1d", "unknown unit `d`"),
            ("99999999999999999999999h", "too large"),
            ("18446744073709551616s", "too large"),
        ];
        for (text, want) in table {
            let err = parse_duration(text).expect_err(text);
            assert!(
                err.contains(want),
                "{text:?}: {err:?} should mention {want:?}"
            );
        }
    }

    #[test]
    fn display_is_canonical() {
        let table = [
            (Duration::ZERO, "0s"),
            (ms(1_000), "1s"),
            (ms(500), "500ms"),
            (ms(120_000), "2m"),
            (ms(5_400_000), "1h30m"),
            (ms(1_500), "1s500ms"),
            (ms(90_500), "1m30s500ms"),
            (Duration::from_nanos(1_001), "1us1ns"),
            (Duration::from_secs(100 * 3600), "100h"),
        ];
        for (d, want) in table {
            assert_eq!(Dur(d).to_string(), want);
        }
    }

    #[test]
    fn display_round_trips_through_the_parser() {
        let samples = [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::new(3_723, 4_005_006),
            Duration::from_secs(366 * 24 * 3_600),
        ];
        for d in samples {
            assert_eq!(parse_duration(&Dur(d).to_string()), Ok(d));
        }
        // Beyond the longest duration runway takes, the canonical text is refused.
        let too_long = Duration::from_secs(366 * 24 * 3_600) + Duration::from_nanos(1);
        assert!(parse_duration(&Dur(too_long).to_string()).is_err());
        assert!(parse_duration(&Dur(Duration::MAX).to_string()).is_err());
    }

    #[test]
    fn serde_uses_the_string_form() {
        let json = serde_json::to_string(&Dur::from_millis(1_500)).unwrap();
        assert_eq!(json, r#""1s500ms""#);
        assert_eq!(
            serde_json::from_str::<Dur>(&json).unwrap(),
            Dur::from_millis(1_500)
        );
        let err = serde_json::from_str::<Dur>(r#""5 minutes""#).unwrap_err();
        assert!(err.to_string().contains("spaces"), "{err}");
    }
}
