//! Prometheus checks: an instant query's value meets an absolute condition.
//!
//! Runbooks verify with dashboards ("error rate below 1%", "all targets up"); this
//! asks Prometheus the same question through `GET /api/v1/query` and compares the
//! answer with a condition such as `"> 0.99"`. A vector answer must meet the
//! condition for every series; an empty answer fails (no data is not good news).

use std::collections::BTreeMap;

use serde_json::Value;

use super::http;
use crate::model::Condition;

pub(super) async fn run(base: &str, query: &str, condition: &str) -> Result<String, String> {
    let cond = Condition::parse(condition)?;
    let url = format!(
        "{}/api/v1/query?query={}",
        base.trim_end_matches('/'),
        encode_component(query)
    );
    let headers = BTreeMap::new();
    let req = http::Request {
        method: "GET",
        url: &url,
        headers: &headers,
        body: None,
    };
    let resp = http::fetch(&req).await?;
    let doc: Value = serde_json::from_slice(&resp.body).map_err(|e| {
        format!(
            "Prometheus answered status {} with a body that is not JSON ({e})",
            resp.status.as_u16()
        )
    })?;
    if doc["status"] != "success" {
        let error = doc["error"].as_str().unwrap_or("no error message");
        return Err(format!(
            "query {query:?} failed (status {}): {error}",
            resp.status.as_u16()
        ));
    }
    let values = sample_values(&doc["data"])?;
    if values.is_empty() {
        return Err(format!("query {query:?} returned no data"));
    }
    let failing: Vec<String> = values
        .iter()
        .filter(|(_, v)| !cond.holds(*v))
        .map(|(labels, v)| format!("{labels}{v}"))
        .collect();
    if !failing.is_empty() {
        return Err(format!(
            "query {query:?}: {} does not meet {cond}",
            failing.join(", ")
        ));
    }
    let shown: Vec<String> = values.iter().map(|(l, v)| format!("{l}{v}")).collect();
    Ok(format!(
        "query {query:?} = {} meets {cond}",
        shown.join(", ")
    ))
}

/// `(labels prefix, value)` for each sample of a vector or scalar result.
fn sample_values(data: &Value) -> Result<Vec<(String, f64)>, String> {
    let parse = |sample: &Value| -> Result<f64, String> {
        let text = sample[1]
            .as_str()
            .ok_or("the sample has no value".to_string())?;
        let v: f64 = text
            .parse()
            .map_err(|_| format!("sample value {text:?} is not a number"))?;
        if v.is_nan() {
            return Err("the value is NaN".into());
        }
        Ok(v)
    };
    match data["resultType"].as_str() {
        Some("scalar") => Ok(vec![(String::new(), parse(&data["result"])?)]),
        Some("vector") => data["result"]
            .as_array()
            .ok_or("the vector has no result list")?
            .iter()
            .map(|s| {
                let labels = s["metric"]
                    .as_object()
                    .filter(|m| !m.is_empty())
                    .map(|m| {
                        let pairs: Vec<String> =
                            m.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        format!("{{{}}} ", pairs.join(","))
                    })
                    .unwrap_or_default();
                Ok((labels, parse(&s["value"])?))
            })
            .collect(),
        Some(other) => Err(format!(
            "result type {other:?} is not supported; write an instant query returning a vector or scalar"
        )),
        None => Err("the answer has no resultType".into()),
    }
}

/// Percent-encodes a query-string component (RFC 3986 unreserved characters kept).
fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encoding() {
        assert_eq!(
            encode_component("sum(rate(x{a=\"b\"}[5m]))"),
            "sum%28rate%28x%7Ba%3D%22b%22%7D%5B5m%5D%29%29"
        );
    }

    #[test]
    fn samples() {
        let v = json!({"resultType":"vector","result":[
            {"metric":{"job":"api"},"value":[1.0,"0.5"]},{"metric":{},"value":[1.0,"2"]}]});
        assert_eq!(
            sample_values(&v).unwrap(),
            vec![("{job=\"api\"} ".to_string(), 0.5), (String::new(), 2.0)]
        );
        let s = json!({"resultType":"scalar","result":[1.0,"3"]});
        assert_eq!(sample_values(&s).unwrap(), vec![(String::new(), 3.0)]);
        let nan = json!({"resultType":"vector","result":[{"metric":{},"value":[1.0,"NaN"]}]});
        assert!(sample_values(&nan).unwrap_err().contains("NaN"));
        assert!(sample_values(&json!({"resultType":"matrix","result":[]})).is_err());
    }
}
