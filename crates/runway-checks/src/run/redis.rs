//! Redis checks: the server answers PING, and has memory headroom.
//!
//! "Redis answering" is a checklist item; a cache or queue at its `maxmemory` evicts
//! keys or refuses writes, which a deploy's cache warm-up makes worse.
//! `maxmemory 0` means unlimited: the share cannot be judged and the check passes
//! with a note saying so.

use redis::AsyncConnectionConfig;

use super::{human_bytes, net};

pub(super) async fn run(url: &str, max_memory_share: Option<f64>) -> Result<String, String> {
    let client =
        redis::Client::open(url).map_err(|e| format!("invalid Redis url: {}", describe(&e)))?;
    // The attempt's own timeout bounds everything; the crate's defaults would cut in
    // earlier with a less clear message.
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(None)
        .set_response_timeout(None);
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| {
            format!(
                "cannot connect to Redis{}: {}",
                net::at_target(url),
                describe(&e)
            )
        })?;
    let pong: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .map_err(|e| format!("PING failed: {}", describe(&e)))?;
    let Some(limit) = max_memory_share else {
        return Ok(format!("PING answered {pong}"));
    };
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn)
        .await
        .map_err(|e| format!("INFO memory failed: {}", describe(&e)))?;
    let field = |name: &str| -> Option<u64> {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
    };
    let used = field("used_memory").ok_or("INFO memory has no used_memory")?;
    let max = field("maxmemory").ok_or("INFO memory has no maxmemory")?;
    if max == 0 {
        return Ok(format!(
            "PING answered {pong}; {} used, maxmemory 0 (unlimited): memory share not checked",
            human_bytes(used)
        ));
    }
    let share = used as f64 / max as f64;
    let usage = format!(
        "{} used of maxmemory {} ({:.1}%)",
        human_bytes(used),
        human_bytes(max),
        share * 100.0
    );
    if share >= limit {
        return Err(format!(
            "{usage}, at or above max_memory_share {:.0}%",
            limit * 100.0
        ));
    }
    Ok(format!("PING answered {pong}; {usage}"))
}

fn describe(e: &redis::RedisError) -> String {
    net::error_chain(e)
}
