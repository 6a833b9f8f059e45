//! When a deployment may start: deploy windows ("Mon-Thu 14:00-18:00") in a named IANA time
//! zone, and freezes by dates, by recurrence rule (RFC 5545 RRULE) or as the last days of each
//! quarter, each with the deployment types it lets through. Runbook 001's calendar, as pure
//! logic over a given instant: the engine asks with its clock, the tests with any instant
//! (daylight saving changes, the year boundary, quarter ends), and `runway windows` shows the
//! coming days.
//!
//! Why chrono-tz and rrule: the zone rules are compiled in (the same answer on every machine,
//! no /usr/share/zoneinfo needed), and rrule is the maintained RFC 5545 implementation for
//! chrono; a recurrence rule is too easy to get subtly wrong by hand (BYSETPOS, leap days).
//!
//! Every local time is turned into an instant the same way: a time that does not exist (the hour
//! skipped when clocks go forward) is taken an hour later, and one that exists twice (clocks go
//! back) at its first occurrence.

use std::fmt;

use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc,
    Weekday,
};
pub use chrono_tz::Tz;

/// What is wrong with a piece of the calendar, and what to write instead: the spec reader
/// places it at the value's line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    pub hint: Option<String>,
}

impl Problem {
    fn new(message: impl Into<String>, hint: impl Into<String>) -> Problem {
        Problem {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
}

/// How far ahead the calendar looks for the next open moment.
const HORIZON_DAYS: i64 = 400;

/// An IANA zone name (`Europe/Berlin`, `UTC`).
pub fn parse_zone(name: &str) -> Result<Tz, Problem> {
    name.parse::<Tz>().map_err(|_| {
        Problem::new(
            format!("`{name}` is not an IANA time zone"),
            "timezone = \"Europe/Berlin\" (a name from the tz database; \"UTC\" for UTC)",
        )
    })
}

const DAYS: [(&str, Weekday); 7] = [
    ("Mon", Weekday::Mon),
    ("Tue", Weekday::Tue),
    ("Wed", Weekday::Wed),
    ("Thu", Weekday::Thu),
    ("Fri", Weekday::Fri),
    ("Sat", Weekday::Sat),
    ("Sun", Weekday::Sun),
];

/// A weekly deploy window: days and a time span, in the calendar's zone. A span whose end is
/// not after its start runs past midnight (`Fri 22:00-02:00` ends Saturday 02:00).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Monday first.
    days: [bool; 7],
    /// Minutes after midnight.
    start: u32,
    end: u32,
    text: String,
}

const WINDOW_HINT: &str =
    "write days and hours: \"Mon-Thu 14:00-18:00\", \"Mon,Wed 09:00-12:00\", \
                           \"daily 22:00-02:00\"";

impl Window {
    /// `Mon-Thu 14:00-18:00`, `Mon,Wed,Fri 09:30-11:00`, `daily 00:00-24:00`.
    pub fn parse(text: &str) -> Result<Window, Problem> {
        let bad = |why: &str| Problem::new(format!("`{text}` is not a window: {why}"), WINDOW_HINT);
        let (days, hours) = text
            .trim()
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad("it needs days, a space and hours"))?;
        let days = parse_days(days).map_err(|why| bad(&why))?;
        let (start, end) = hours
            .trim()
            .split_once('-')
            .ok_or_else(|| bad("hours are FROM-TO, like 14:00-18:00"))?;
        let start = parse_minutes(start).map_err(|why| bad(&why))?;
        let end = parse_minutes(end).map_err(|why| bad(&why))?;
        if start == 24 * 60 {
            return Err(bad("a window cannot start at 24:00"));
        }
        if start == end {
            return Err(bad("it starts and ends at the same time"));
        }
        Ok(Window {
            days,
            start,
            end,
            text: text.trim().to_string(),
        })
    }

    fn wraps(&self) -> bool {
        self.end <= self.start
    }

    fn on(&self, day: Weekday) -> bool {
        self.days[day.num_days_from_monday() as usize]
    }

    /// Whether local time `at` is inside the window.
    fn contains(&self, at: NaiveDateTime) -> bool {
        let minute = at.hour() * 60 + at.minute();
        let today = self.on(at.weekday());
        if self.wraps() {
            (today && minute >= self.start) || (self.on(at.weekday().pred()) && minute < self.end)
        } else {
            today && minute >= self.start && minute < self.end
        }
    }

    /// The local (start, end) spans of the window that begin on `date`.
    fn spans_on(&self, date: NaiveDate) -> Option<(NaiveDateTime, NaiveDateTime)> {
        if !self.on(date.weekday()) {
            return None;
        }
        let start = local(date, self.start);
        let end = if self.wraps() || self.end == 24 * 60 {
            local(date.succ_opt()?, self.end % (24 * 60))
        } else {
            local(date, self.end)
        };
        Some((start, end))
    }

    /// Whether two windows share a minute of some week.
    pub fn overlaps(&self, other: &Window) -> bool {
        let (mine, theirs) = (self.week_minutes(), other.week_minutes());
        mine.iter().zip(&theirs).any(|(a, b)| *a && *b)
    }

    /// The minutes of the week (Monday 00:00 first) the window covers.
    fn week_minutes(&self) -> Vec<bool> {
        const WEEK: u32 = 7 * 1440;
        let mut minutes = vec![false; WEEK as usize];
        let length = if self.wraps() {
            1440 - self.start + self.end
        } else {
            self.end - self.start
        };
        for day in (0..7u32).filter(|d| self.days[*d as usize]) {
            for m in 0..length {
                minutes[((day * 1440 + self.start + m) % WEEK) as usize] = true;
            }
        }
        minutes
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn parse_days(text: &str) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    if matches!(text.to_ascii_lowercase().as_str(), "daily" | "any") {
        return Ok([true; 7]);
    }
    let day = |name: &str| -> Result<usize, String> {
        DAYS.iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(name))
            .ok_or_else(|| format!("`{name}` is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)"))
    };
    for part in text.split(',') {
        match part.split_once('-') {
            Some((from, to)) => {
                let (mut d, to) = (day(from)?, day(to)?);
                loop {
                    days[d] = true;
                    if d == to {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => days[day(part)?] = true,
        }
    }
    Ok(days)
}

/// `HH:MM` (24:00 allowed) as minutes after midnight.
fn parse_minutes(text: &str) -> Result<u32, String> {
    let (h, m) = text
        .trim()
        .split_once(':')
        .ok_or_else(|| format!("`{text}` is not a time like 14:00"))?;
    let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    let (h, m): (u32, u32) = match (h.parse::<u32>(), m.parse::<u32>()) {
        (Ok(hour), Ok(minute))
            if (1..=2).contains(&h.len())
                && two_digits(m)
                && minute < 60
                && (hour < 24 || (hour == 24 && minute == 0)) =>
        {
            (hour, minute)
        }
        _ => return Err(format!("`{text}` is not a time from 00:00 to 24:00")),
    };
    Ok(h * 60 + m)
}

fn local(date: NaiveDate, minutes: u32) -> NaiveDateTime {
    date.and_time(NaiveTime::from_hms_opt(minutes / 60, minutes % 60, 0).unwrap_or(NaiveTime::MIN))
}

/// The instant of local time `at` in `tz`: a skipped time an hour later, a doubled one at its
/// first occurrence.
fn instant(tz: Tz, at: NaiveDateTime) -> DateTime<Utc> {
    tz.from_local_datetime(&at)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(at + Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&at))
}

/// The instant in (`from`, `to`] where `zone`'s offset from UTC changes, if it does (to the
/// second, by bisection: zones change at most a few times a year).
fn offset_change(zone: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Option<DateTime<Utc>> {
    use chrono::Offset;
    let offset = |t: DateTime<Utc>| t.with_timezone(&zone).offset().fix().local_minus_utc();
    if offset(from) == offset(to) {
        return None;
    }
    let at = |seconds: i64| Utc.timestamp_opt(seconds, 0).single();
    let (mut before, mut after) = (from.timestamp(), to.timestamp());
    while after - before > 1 {
        let middle = before + (after - before) / 2;
        if offset(at(middle)?) == offset(from) {
            before = middle;
        } else {
            after = middle;
        }
    }
    at(after)
}

/// When a freeze holds.
#[derive(Debug, Clone)]
pub enum When {
    /// From the start of `from` to the end of `to` (local dates, both included).
    Dates { from: NaiveDate, to: NaiveDate },
    /// The last `days` days of every quarter (financial close).
    QuarterEnd { days: u32 },
    /// From each occurrence of a recurrence rule, for `duration`.
    Rule {
        set: Box<rrule::RRuleSet>,
        duration: Duration,
        text: String,
    },
}

/// A freeze: no deployment starts while it holds, except of the types it names.
#[derive(Debug, Clone)]
pub struct Freeze {
    pub name: String,
    pub when: When,
    pub except: Vec<String>,
}

impl Freeze {
    /// From `from` to `to`, dates as `2026-12-15`, both days included.
    pub fn dates(from: &str, to: &str) -> Result<When, Problem> {
        let date = |text: &str| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
                Problem::new(
                    format!("`{text}` is not a date"),
                    "write dates as 2026-12-15",
                )
            })
        };
        let (from, to) = (date(from)?, date(to)?);
        if from.year() < 1970 || to.year() > 9999 {
            return Err(Problem::new(
                format!("the freeze {from} to {to} is not between the years 1970 and 9999"),
                "write dates as 2026-12-15",
            ));
        }
        if to < from {
            return Err(Problem::new(
                format!("the freeze ends ({to}) before it starts ({from})"),
                "swap from and to",
            ));
        }
        Ok(When::Dates { from, to })
    }

    /// The last `days` days of each quarter.
    pub fn quarter_end(days: u32) -> Result<When, Problem> {
        if days == 0 || days > 31 {
            return Err(Problem::new(
                format!("{days} is not a number of days at a quarter's end"),
                "last_days_of_quarter = 3 (1 to 31)",
            ));
        }
        Ok(When::QuarterEnd { days })
    }

    /// Each occurrence of `rule` (an RRULE line without `RRULE:`, `FREQ=WEEKLY;BYDAY=FR`),
    /// counted from `starts` (a local date and time in `tz`) and holding for `duration`.
    pub fn rule(
        rule: &str,
        starts: NaiveDateTime,
        tz: Tz,
        duration: std::time::Duration,
    ) -> Result<When, Problem> {
        let rule = rule.trim().trim_start_matches("RRULE:");
        let source = format!(
            "DTSTART;TZID={}:{}\nRRULE:{rule}",
            tz.name(),
            starts.format("%Y%m%dT%H%M%S")
        );
        let set: rrule::RRuleSet = source.parse().map_err(|e: rrule::RRuleError| {
            Problem::new(
                format!("`{rule}` is not a recurrence rule: {e}"),
                "an RFC 5545 RRULE, e.g. rrule = \"FREQ=WEEKLY;BYDAY=FR;BYHOUR=12\"",
            )
        })?;
        if set.clone().all(1).dates.is_empty() {
            return Err(Problem::new(
                format!("the recurrence rule `{rule}` never fires"),
                "check its BYMONTH/BYMONTHDAY (there is no February 30) and its UNTIL or COUNT",
            ));
        }
        let duration = Duration::from_std(duration)
            .ok()
            .filter(|d| *d > Duration::zero())
            .ok_or_else(|| {
                Problem::new(
                    "a freeze's duration must be greater than 0",
                    "duration = \"12h\"",
                )
            })?;
        Ok(When::Rule {
            set: Box::new(set),
            duration,
            text: rule.to_string(),
        })
    }

    /// Whether it holds at local time `local` (instant `at`).
    fn holds(&self, at: DateTime<Utc>, local: NaiveDateTime) -> bool {
        match &self.when {
            When::Dates { from, to } => (*from..=*to).contains(&local.date()),
            When::QuarterEnd { days } => {
                let end = quarter_end(local.date());
                local.date() > end - Duration::days(*days as i64)
            }
            When::Rule { set, duration, .. } => occurrences(
                set,
                at - *duration - Duration::seconds(1),
                at + Duration::seconds(1),
            )
            .into_iter()
            .any(|o| o <= at && at < o + *duration),
        }
    }

    fn describe(&self) -> String {
        let when = match &self.when {
            When::Dates { from, to } => format!("{from} to {to}"),
            When::QuarterEnd { days } => format!("the last {days} days of each quarter"),
            When::Rule { text, duration, .. } => {
                format!("{text}, for {}", human(*duration))
            }
        };
        format!("freeze `{}` ({when})", self.name)
    }

    fn lets_through(&self, deploy_type: &str) -> bool {
        self.except.iter().any(|t| t == deploy_type)
    }
}

fn human(d: Duration) -> String {
    let minutes = d.num_minutes();
    if minutes % (24 * 60) == 0 {
        format!("{}d", minutes / (24 * 60))
    } else if minutes % 60 == 0 {
        format!("{}h", minutes / 60)
    } else {
        format!("{minutes}m")
    }
}

/// The last day of `date`'s quarter.
fn quarter_end(date: NaiveDate) -> NaiveDate {
    let first_of_next = next_quarter(date);
    first_of_next.pred_opt().unwrap_or(first_of_next)
}

/// The first day of the quarter after `date`'s.
fn next_quarter(date: NaiveDate) -> NaiveDate {
    let month = (date.month0() / 3) * 3 + 4;
    let (year, month) = if month > 12 {
        (date.year() + 1, month - 12)
    } else {
        (date.year(), month)
    };
    NaiveDate::from_ymd_opt(year, month, 1).unwrap_or(date)
}

fn occurrences(
    set: &rrule::RRuleSet,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let tz = rrule::Tz::UTC;
    set.clone()
        .after(from.with_timezone(&tz))
        .before(to.with_timezone(&tz))
        .all(2000)
        .dates
        .into_iter()
        .map(|d| d.with_timezone(&Utc))
        .collect()
}

/// Whether a deployment may start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Open,
    /// Closed by `rule`; open again at `next_open` (none within 400 days).
    Closed {
        rule: String,
        next_open: Option<DateTime<Utc>>,
    },
}

/// A stretch of time with one state: open, or closed by a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub closed_by: Option<String>,
}

/// A service's deploy calendar for one deployment type.
#[derive(Debug, Clone)]
pub struct Calendar {
    pub zone: Tz,
    /// When deployments may start; none means any time.
    pub windows: Vec<Window>,
    pub freezes: Vec<Freeze>,
}

impl Calendar {
    /// The rule that keeps a deployment of `deploy_type` from starting at `at`, if any.
    pub fn closed_by(&self, at: DateTime<Utc>, deploy_type: &str) -> Option<String> {
        let local = at.with_timezone(&self.zone).naive_local();
        if let Some(freeze) = self
            .freezes
            .iter()
            .find(|f| !f.lets_through(deploy_type) && f.holds(at, local))
        {
            return Some(freeze.describe());
        }
        if !self.windows.is_empty() && !self.windows.iter().any(|w| w.contains(local)) {
            let windows: Vec<String> = self.windows.iter().map(|w| w.to_string()).collect();
            return Some(format!(
                "outside the deploy windows ({}, {})",
                windows.join("; "),
                self.zone.name()
            ));
        }
        None
    }

    /// Whether a deployment of `deploy_type` may start at `at`, and if not, why and when next.
    pub fn check(&self, at: DateTime<Utc>, deploy_type: &str) -> Verdict {
        match self.closed_by(at, deploy_type) {
            None => Verdict::Open,
            Some(rule) => Verdict::Closed {
                rule,
                next_open: self.next_open(at, deploy_type),
            },
        }
    }

    /// The first moment from `at` on (within 400 days) when a deployment of `deploy_type` may
    /// start.
    pub fn next_open(&self, at: DateTime<Utc>, deploy_type: &str) -> Option<DateTime<Utc>> {
        std::iter::once(at)
            .chain(self.boundaries(at, at + Duration::days(HORIZON_DAYS)))
            .find(|t| self.closed_by(*t, deploy_type).is_none())
    }

    /// From `from` to `to`, the stretches that are open and those closed (by which rule).
    pub fn spans(&self, from: DateTime<Utc>, to: DateTime<Utc>, deploy_type: &str) -> Vec<Span> {
        let mut points = vec![from];
        points.extend(self.boundaries(from, to));
        points.push(to);
        let mut spans: Vec<Span> = Vec::new();
        for pair in points.windows(2) {
            let (start, end) = (pair[0], pair[1]);
            if start >= end {
                continue;
            }
            let closed_by = self.closed_by(start, deploy_type);
            match spans.last_mut() {
                Some(last) if last.closed_by == closed_by && last.end == start => last.end = end,
                _ => spans.push(Span {
                    start,
                    end,
                    closed_by,
                }),
            }
        }
        spans
    }

    /// Every instant in (`from`, `to`) where the state may change: window starts and ends,
    /// freeze starts and ends, local midnights.
    fn boundaries(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let zone = self.zone;
        let first = from.with_timezone(&zone).date_naive() - Duration::days(1);
        let last = to.with_timezone(&zone).date_naive() + Duration::days(1);
        let mut points = Vec::new();
        let mut date = first;
        while date <= last {
            let midnight = instant(zone, local(date, 0));
            points.push(midnight);
            // The moment the clocks change: a window whose start the change skipped is open
            // from it, and an hour lived twice opens its window a second time.
            if let Some(change) = offset_change(
                zone,
                midnight,
                instant(zone, local(date + Duration::days(1), 0)),
            ) {
                points.push(change);
            }
            for window in &self.windows {
                if let Some((start, end)) = window.spans_on(date) {
                    points.push(instant(zone, start));
                    points.push(instant(zone, end));
                }
            }
            date += Duration::days(1);
        }
        for freeze in &self.freezes {
            match &freeze.when {
                When::Dates { from, to } => {
                    points.push(instant(zone, local(*from, 0)));
                    points.push(instant(zone, local(*to + Duration::days(1), 0)));
                }
                When::QuarterEnd { days } => {
                    let mut quarter = next_quarter(first - Duration::days(100));
                    while quarter <= last + Duration::days(100) {
                        points.push(instant(
                            zone,
                            local(quarter - Duration::days(*days as i64), 0),
                        ));
                        points.push(instant(zone, local(quarter, 0)));
                        quarter = next_quarter(quarter);
                    }
                }
                When::Rule { set, duration, .. } => {
                    for o in occurrences(set, from - *duration, to) {
                        points.push(o);
                        points.push(o + *duration);
                    }
                }
            }
        }
        points.retain(|p| *p > from && *p < to);
        points.sort();
        points.dedup();
        points
    }
}

#[cfg(test)]
mod tests;
