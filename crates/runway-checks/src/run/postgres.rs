//! PostgreSQL checks: the server accepts a connection and answers a query, and is not
//! running out of connections.
//!
//! "PostgreSQL accepting queries and not exhausted" is the first item of most
//! pre-deployment checklists: a new release that cannot get a connection fails at
//! once, and a deploy briefly doubles the connections in use. The query runs through
//! the simple-query protocol so any statement works and its first column comes back as
//! text, which is what `expect` compares against.
//!
//! Plain connections only (`NoTls`); the URL may come from `env:`/`secret:` references
//! and never appears in a detail.

use super::net;

const DEFAULT_QUERY: &str = "SELECT 1";

/// Connections by clients (not background workers) and the server's limit.
const CONNECTIONS_QUERY: &str = "SELECT (SELECT count(*) FROM pg_stat_activity \
     WHERE backend_type = 'client backend')::text, current_setting('max_connections')";

pub(super) async fn run(
    url: &str,
    query: Option<&str>,
    expect: Option<&str>,
    max_connections_share: Option<f64>,
) -> Result<String, String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| {
            format!(
                "cannot connect to PostgreSQL{}: {}",
                net::at_target(url),
                describe(&e)
            )
        })?;
    let query = query.unwrap_or(DEFAULT_QUERY);
    let work = async {
        let first = first_value(&client, query)
            .await?
            .unwrap_or_else(|| "(no rows)".into());
        let mut detail = format!("{query:?} returned {first:?}");
        if let Some(want) = expect {
            if first != want {
                return Err(format!("{query:?} returned {first:?} (expected {want:?})"));
            }
        }
        if let Some(limit) = max_connections_share {
            let rows = client
                .simple_query(CONNECTIONS_QUERY)
                .await
                .map_err(|e| format!("cannot read connection usage: {}", describe(&e)))?;
            let (used, max) = rows
                .iter()
                .find_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => Some((
                        r.get(0).and_then(|v| v.parse::<f64>().ok()),
                        r.get(1).and_then(|v| v.parse::<f64>().ok()),
                    )),
                    _ => None,
                })
                .and_then(|(u, m)| Some((u?, m?)))
                .ok_or("cannot read connection usage: unexpected answer")?;
            let share = if max > 0.0 { used / max } else { 1.0 };
            let usage = format!("{used}/{max} connections in use ({:.0}%)", share * 100.0);
            if share >= limit {
                return Err(format!(
                    "{usage}, at or above max_connections_share {:.0}%",
                    limit * 100.0
                ));
            }
            detail.push_str(&format!("; {usage}"));
        }
        Ok(detail)
    };
    tokio::pin!(connection, work);
    // The connection must be polled for the client to make progress; driving it here
    // ties its lifetime to the attempt.
    tokio::select! {
        biased;
        r = &mut work => r,
        r = &mut connection => match r {
            Err(e) => Err(format!("PostgreSQL connection failed: {}", describe(&e))),
            Ok(()) => Err("PostgreSQL closed the connection".into()),
        },
    }
}

async fn first_value(
    client: &tokio_postgres::Client,
    query: &str,
) -> Result<Option<String>, String> {
    let messages = client
        .simple_query(query)
        .await
        .map_err(|e| format!("{query:?} failed: {}", describe(&e)))?;
    Ok(messages.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("NULL").to_string()),
        _ => None,
    }))
}

/// Server errors as "FATAL: password authentication failed for user …" (the
/// server's own words), other errors with their causes.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let text = net::error_chain(e);
            match text.strip_prefix("error connecting to server: ") {
                Some(rest) => rest.to_string(),
                None => text,
            }
        }
    }
}
