//! A clock the test sets: windows, freezes and approval expiry at any instant, at once.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use runway_engine::clock::Clock;

pub struct FakeClock {
    now: Mutex<DateTime<Utc>>,
}

impl Default for FakeClock {
    /// Monday 2026-03-02 15:00 UTC: inside a Mon-Thu 14:00-18:00 window.
    fn default() -> Self {
        FakeClock {
            now: Mutex::new(
                DateTime::parse_from_rfc3339("2026-03-02T15:00:00Z")
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or_else(|_| Utc::now()),
            ),
        }
    }
}

impl FakeClock {
    /// From now on it says `at` (RFC 3339).
    pub fn set(&self, at: &str) {
        let at = DateTime::parse_from_rfc3339(at)
            .unwrap_or_else(|e| panic!("`{at}` is not RFC 3339: {e}"))
            .with_timezone(&Utc);
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }

    pub fn advance(&self, by: Duration) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}
