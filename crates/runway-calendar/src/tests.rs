//! The calendar at chosen instants: daylight saving changes, the year boundary, quarter ends,
//! recurrence rules, exceptions by type.

use super::*;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn windows(zone: &str, windows: &[&str]) -> Calendar {
    Calendar {
        zone: parse_zone(zone).unwrap(),
        windows: windows.iter().map(|w| Window::parse(w).unwrap()).collect(),
        freezes: Vec::new(),
    }
}

fn freeze(name: &str, when: When, except: &[&str]) -> Freeze {
    Freeze {
        name: name.into(),
        when,
        except: except.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn windows_parse_or_say_what_to_write() {
    for good in [
        "Mon-Thu 14:00-18:00",
        "Mon,Wed,Fri 09:30-11:00",
        "daily 00:00-24:00",
        "Fri-Mon 22:00-02:00",
    ] {
        Window::parse(good).unwrap_or_else(|e| panic!("{good}: {e:?}"));
    }
    for (bad, says) in [
        ("Mon-Thu", "needs days, a space and hours"),
        ("Mon-Thr 14:00-18:00", "`Thr` is not a day"),
        ("Mon 14:00", "hours are FROM-TO"),
        ("Mon 14:00-25:00", "`25:00` is not a time"),
        ("Mon 14:60-15:00", "`14:60` is not a time"),
        ("Mon 14:00-14:00", "starts and ends at the same time"),
        ("Mon 24:00-02:00", "cannot start at 24:00"),
    ] {
        let e = Window::parse(bad).unwrap_err();
        assert!(e.message.contains(says), "{bad}: {}", e.message);
        assert!(e.hint.as_deref().unwrap().contains("Mon-Thu 14:00-18:00"));
    }
    assert!(parse_zone("Mars/Olympus")
        .unwrap_err()
        .message
        .contains("not an IANA time zone"));
}

#[test]
fn overlapping_windows_are_found_also_across_midnight_and_the_week_end() {
    let w = |t: &str| Window::parse(t).unwrap();
    assert!(w("Mon-Thu 14:00-18:00").overlaps(&w("Mon 17:00-19:00")));
    assert!(!w("Mon-Thu 14:00-18:00").overlaps(&w("Mon-Thu 18:00-20:00")));
    assert!(
        w("Sun 22:00-02:00").overlaps(&w("Mon 01:00-03:00")),
        "past midnight into Monday"
    );
    assert!(!w("Sun 22:00-02:00").overlaps(&w("Mon 02:00-03:00")));
}

#[test]
fn a_window_follows_the_zone_across_daylight_saving() {
    // Berlin goes from CET (+1) to CEST (+2) on 2026-03-29.
    let c = windows("Europe/Berlin", &["Mon-Fri 14:00-18:00"]);
    assert_eq!(
        c.closed_by(utc("2026-03-27T16:30:00Z"), "standard"),
        None,
        "17:30 CET"
    );
    assert!(
        c.closed_by(utc("2026-03-27T17:30:00Z"), "standard")
            .is_some(),
        "18:30 CET"
    );
    // The same UTC time a week later is an hour later in Berlin: outside.
    let closed = c
        .closed_by(utc("2026-03-30T16:30:00Z"), "standard")
        .unwrap();
    assert_eq!(
        closed,
        "outside the deploy windows (Mon-Fri 14:00-18:00, Europe/Berlin)"
    );
    // Friday evening: next open is Monday 14:00 CEST, 12:00 UTC.
    assert_eq!(
        c.next_open(utc("2026-03-27T18:00:00Z"), "standard"),
        Some(utc("2026-03-30T12:00:00Z"))
    );
    // A window in the skipped hour (02:00-03:00 on 2026-03-29) opens when the hour exists again.
    let c = windows("Europe/Berlin", &["Sun 02:00-04:00"]);
    assert_eq!(
        c.next_open(utc("2026-03-28T12:00:00Z"), "standard"),
        Some(utc("2026-03-29T01:00:00Z")),
        "03:00 CEST, the first minute after the gap"
    );
    // One that starts inside the gap is open from the change on, as its clock reads 03:00.
    let c = windows("Europe/Berlin", &["Sun 02:30-04:00"]);
    assert_eq!(
        c.next_open(utc("2026-03-28T12:00:00Z"), "standard"),
        Some(utc("2026-03-29T01:00:00Z"))
    );
    // When Berlin goes back (2026-10-25, 03:00 CEST -> 02:00 CET), 02:00-02:30 comes twice:
    // after the first (00:00-00:30 UTC) it opens again at the change, 01:00 UTC.
    let c = windows("Europe/Berlin", &["Sun 02:00-02:30"]);
    assert_eq!(
        c.next_open(utc("2026-10-25T00:40:00Z"), "standard"),
        Some(utc("2026-10-25T01:00:00Z"))
    );
    // New York goes back on 2026-11-01: 01:30 exists twice; the window opens at the first.
    let c = windows("America/New_York", &["Sun 01:30-03:00"]);
    assert_eq!(
        c.next_open(utc("2026-10-31T12:00:00Z"), "standard"),
        Some(utc("2026-11-01T05:30:00Z")),
        "01:30 EDT"
    );
}

#[test]
fn the_holiday_freeze_spans_the_year_boundary_and_lets_its_exceptions_through() {
    let mut c = windows("UTC", &["Mon-Thu 14:00-18:00"]);
    c.freezes.push(freeze(
        "holiday",
        Freeze::dates("2026-12-15", "2027-01-02").unwrap(),
        &["emergency"],
    ));
    let at = utc("2026-12-31T15:00:00Z"); // a Thursday, inside the window
    let Verdict::Closed { rule, next_open } = c.check(at, "standard") else {
        panic!("the holiday freeze holds");
    };
    assert_eq!(rule, "freeze `holiday` (2026-12-15 to 2027-01-02)");
    // Jan 3 is a Sunday: the next window is Monday Jan 4, 14:00.
    assert_eq!(next_open, Some(utc("2027-01-04T14:00:00Z")));
    assert_eq!(c.check(at, "emergency"), Verdict::Open, "its exception");
    // The first and last day are in it, the days around are not.
    assert!(c
        .closed_by(utc("2026-12-15T00:00:00Z"), "x")
        .unwrap()
        .contains("holiday"));
    assert!(c
        .closed_by(utc("2027-01-02T23:59:00Z"), "x")
        .unwrap()
        .contains("holiday"));
    assert!(!c
        .closed_by(utc("2026-12-14T15:00:00Z"), "x")
        .unwrap_or_default()
        .contains("holiday"));
    assert!(Freeze::dates("2027-01-02", "2026-12-15")
        .unwrap_err()
        .message
        .contains("ends"));
    assert!(Freeze::dates("2026-13-01", "2026-12-15")
        .unwrap_err()
        .message
        .contains("not a date"));
}

#[test]
fn the_last_days_of_each_quarter_are_frozen() {
    let c = Calendar {
        zone: parse_zone("UTC").unwrap(),
        windows: Vec::new(),
        freezes: vec![freeze(
            "quarter close",
            Freeze::quarter_end(3).unwrap(),
            &["security"],
        )],
    };
    for closed in [
        "2026-03-29T00:00:00Z",
        "2026-03-31T23:59:00Z",
        "2026-06-28T10:00:00Z",
        "2026-12-31T10:00:00Z",
    ] {
        assert!(c.closed_by(utc(closed), "standard").is_some(), "{closed}");
    }
    for open in [
        "2026-03-28T23:59:00Z",
        "2026-04-01T00:00:00Z",
        "2026-06-27T10:00:00Z",
    ] {
        assert_eq!(c.closed_by(utc(open), "standard"), None, "{open}");
    }
    assert_eq!(c.closed_by(utc("2026-03-30T10:00:00Z"), "security"), None);
    assert_eq!(
        c.next_open(utc("2026-12-30T10:00:00Z"), "standard"),
        Some(utc("2027-01-01T00:00:00Z")),
        "across the year boundary"
    );
    assert!(Freeze::quarter_end(0).is_err());
}

#[test]
fn a_recurrence_rule_freezes_from_each_occurrence_for_its_duration() {
    let zone = parse_zone("Europe/Berlin").unwrap();
    let starts = NaiveDate::from_ymd_opt(2026, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let rule = Freeze::rule(
        "FREQ=WEEKLY;BYDAY=FR;BYHOUR=12;BYMINUTE=0;BYSECOND=0",
        starts,
        zone,
        std::time::Duration::from_secs(12 * 3600),
    )
    .unwrap();
    let c = Calendar {
        zone,
        windows: Vec::new(),
        freezes: vec![freeze("friday afternoons", rule, &[])],
    };
    // Friday 2026-03-27: 12:00 CET is 11:00 UTC.
    assert_eq!(c.closed_by(utc("2026-03-27T10:59:00Z"), "x"), None);
    let closed = c.closed_by(utc("2026-03-27T11:00:00Z"), "x").unwrap();
    assert!(
        closed.contains("friday afternoons") && closed.contains("for 12h"),
        "{closed}"
    );
    assert!(c.closed_by(utc("2026-03-27T22:59:00Z"), "x").is_some());
    assert_eq!(
        c.closed_by(utc("2026-03-27T23:00:00Z"), "x"),
        None,
        "Saturday 00:00 CET"
    );
    assert_eq!(
        c.next_open(utc("2026-03-27T15:00:00Z"), "x"),
        Some(utc("2026-03-27T23:00:00Z"))
    );
    let never = Freeze::rule(
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
        starts,
        zone,
        std::time::Duration::from_secs(60),
    );
    assert!(never.unwrap_err().message.contains("never fires"));
    let bad = Freeze::rule(
        "FREQ=SOMETIMES",
        starts,
        zone,
        std::time::Duration::from_secs(60),
    );
    assert!(bad
        .unwrap_err()
        .message
        .contains("is not a recurrence rule"));
}

#[test]
fn a_month_of_spans_alternates_open_and_closed_with_the_rule() {
    let mut c = windows("UTC", &["Mon-Thu 14:00-18:00"]);
    c.freezes.push(freeze(
        "holiday",
        Freeze::dates("2026-12-15", "2027-01-02").unwrap(),
        &[],
    ));
    let spans = c.spans(
        utc("2026-12-07T00:00:00Z"),
        utc("2027-01-07T00:00:00Z"),
        "standard",
    );
    let open: Vec<_> = spans.iter().filter(|s| s.closed_by.is_none()).collect();
    // Dec 7-10 and Dec 14 before the freeze; Jan 4-6 after it.
    let days: Vec<String> = open
        .iter()
        .map(|s| s.start.format("%m-%d %H:%M").to_string())
        .collect();
    assert_eq!(
        days,
        [
            "12-07 14:00",
            "12-08 14:00",
            "12-09 14:00",
            "12-10 14:00",
            "12-14 14:00",
            "01-04 14:00",
            "01-05 14:00",
            "01-06 14:00"
        ]
    );
    assert!(open.iter().all(|s| s.end - s.start == Duration::hours(4)));
    assert!(spans.iter().any(|s| s
        .closed_by
        .as_deref()
        .is_some_and(|r| r.contains("holiday"))));
    // Spans tile the range.
    assert!(spans.windows(2).all(|p| p[0].end == p[1].start));
}
