//! The time the engine judges windows, freezes and approval expiry by, behind a boundary: the
//! system's clock in the server, a clock the test sets in the engine's tests (crates/runway-fakes'
//! `FakeClock`), so that a daylight saving change or a window that closes while a deployment
//! waits for approval is a test that runs in milliseconds.

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
