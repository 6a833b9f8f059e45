//! The OpenFeature Remote Evaluation Protocol (OFREP) on a service's flags, so that any
//! OpenFeature SDK with its OFREP provider reads them unchanged: its base URL is
//! `http(s)://SERVER/v1/services/SERVICE`, its `Authorization: Bearer` a runway token (a
//! viewer's is enough). The answers are OFREP's own shapes (its OpenAPI document,
//! open-feature/protocol `service/openapi.yaml`), not runway's error body: that is what the
//! providers read. Evaluations are not in the audit trail (they change nothing, and an
//! application makes one per request); a flag's change is what is recorded.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use runway_flags::{Context, Evaluation};
use runway_wire::api::{OfrepBulk, OfrepError, OfrepEvaluation};

use super::{Api, ApiError};

fn error(status: StatusCode, key: Option<&str>, code: &str, details: String) -> Response {
    (
        status,
        Json(OfrepError {
            key: key.map(str::to_string),
            error_code: code.to_string(),
            error_details: details,
        }),
    )
        .into_response()
}

/// The request's evaluation context; else OFREP's error code and why (a 400).
fn context_of(body: &Bytes) -> Result<Context, (&'static str, String)> {
    let bad = |code: &'static str, details: String| Err((code, details));
    let value: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return bad("PARSE_ERROR", format!("the body is not JSON: {e}")),
    };
    let Some(context) = value.get("context").filter(|c| c.is_object()) else {
        return bad(
            "INVALID_CONTEXT",
            "the body needs a `context` object (`{\"context\": {\"targetingKey\": \"...\"}}`)"
                .into(),
        );
    };
    match serde_json::from_value::<Context>(context.clone()) {
        Ok(context) => Ok(context),
        Err(e) => bad("INVALID_CONTEXT", format!("the context does not read: {e}")),
    }
}

fn answer(e: Evaluation) -> OfrepEvaluation {
    OfrepEvaluation {
        key: e.key,
        value: e.value,
        reason: serde_json::to_value(e.reason)
            .ok()
            .and_then(|r| r.as_str().map(str::to_string))
            .unwrap_or_else(|| "UNKNOWN".into()),
        variant: e.variant,
    }
}

/// `POST .../ofrep/v1/evaluate/flags/{key}`: one flag.
pub(super) async fn evaluate_one(
    State(api): State<Api>,
    Path((service, key)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let context = match context_of(&body) {
        Ok(c) => c,
        Err((code, why)) => return Ok(error(StatusCode::BAD_REQUEST, Some(&key), code, why)),
    };
    Ok(match api.engine.evaluate_flag(&service, &key, &context)? {
        Some(evaluation) => Json(answer(evaluation)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            Some(&key),
            "FLAG_NOT_FOUND",
            format!("`{service}` has no flag `{key}`"),
        ),
    })
}

/// `POST .../ofrep/v1/evaluate/flags`: every flag, with an ETag; `If-None-Match` with the
/// same tag gets 304 (a polling client's flags have not changed).
pub(super) async fn evaluate_all(
    State(api): State<Api>,
    Path(service): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let context = match context_of(&body) {
        Ok(c) => c,
        Err((code, why)) => return Ok(error(StatusCode::BAD_REQUEST, None, code, why)),
    };
    let (evaluations, tag) = api.engine.evaluate_flags(&service, &context)?;
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Json(OfrepBulk {
            flags: evaluations.into_iter().map(answer).collect(),
        })
        .into_response()
    };
    if let Ok(value) = tag.parse() {
        response.headers_mut().insert(header::ETAG, value);
    }
    Ok(response)
}
