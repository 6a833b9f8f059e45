//! Errors as a contract: a stable code per kind of error, its HTTP status, and the JSON body
//! every error answer of the API has.

use serde::{Deserialize, Serialize};

/// What went wrong, as a stable code that clients decide on (never on the message's text).
/// docs/json.md lists them with their HTTP statuses and the CLI's exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed or names something impossible (a bad version name, a count of
    /// 0, an unknown node action).
    InvalidRequest,
    /// No token, or a token the server does not know (or that was revoked).
    Unauthorized,
    /// A known token whose role may not do this; the message names the role it needs.
    Forbidden,
    /// The service, deployment, node, backup or version named does not exist.
    NotFound,
    /// Another operation runs on the service; try again when it ends.
    Busy,
    /// The service is frozen (an irreversible migration failed): a human decides first.
    Frozen,
    /// The service's state does not allow it (it serves and removal was not forced, the node
    /// is already running, the service is deployed from another directory, ...).
    Conflict,
    /// The operation ran and did not succeed (a restarted node did not become healthy); the
    /// message says why.
    Failed,
    /// A fault in the server; its log has the details.
    Internal,
    /// The server cannot do it now, through no fault of the request: its state store refuses
    /// writes (a full disk). It recovers by itself; try again later.
    Unavailable,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 10] = [
        ErrorCode::InvalidRequest,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Busy,
        ErrorCode::Frozen,
        ErrorCode::Conflict,
        ErrorCode::Failed,
        ErrorCode::Internal,
        ErrorCode::Unavailable,
    ];

    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Busy | ErrorCode::Frozen | ErrorCode::Conflict => 409,
            ErrorCode::Failed | ErrorCode::Internal => 500,
            ErrorCode::Unavailable => 503,
        }
    }

    /// The code of an answer without one (a proxy in between, an older server): by status.
    pub fn from_http_status(status: u16) -> ErrorCode {
        match status {
            401 => ErrorCode::Unauthorized,
            403 => ErrorCode::Forbidden,
            404 => ErrorCode::NotFound,
            409 => ErrorCode::Conflict,
            503 => ErrorCode::Unavailable,
            400..=499 => ErrorCode::InvalidRequest,
            _ => ErrorCode::Internal,
        }
    }

    /// What to do about it, when the error says nothing more specific.
    pub fn default_hint(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "`runway help COMMAND` describes what the command takes",
            ErrorCode::Unauthorized => {
                "the CLI reads the token from server.json in the server's state dir: point \
                 --state-dir (or RUNWAY_STATE_DIR) at the state dir of the server you mean"
            }
            ErrorCode::Forbidden => {
                "ask an admin for a token with the role the message names (`runway tokens \
                 create NAME --role ROLE`), and pass it in RUNWAY_TOKEN"
            }
            ErrorCode::NotFound => "`runway status` and `runway history` list what exists",
            ErrorCode::Busy => {
                "wait for the operation to end (`runway status --watch` follows it), then try \
                 again"
            }
            ErrorCode::Frozen => "`runway status` says why the service is frozen and what to do",
            ErrorCode::Conflict => "`runway status` shows the service's state",
            ErrorCode::Failed => "the message says why; `runway logs` shows what the replicas said",
            ErrorCode::Internal => "the server's log has the details",
            ErrorCode::Unavailable => {
                "`runway status` says why; runway recovers by itself once the cause is gone \
                 (free space for its state dir), then try again"
            }
        }
    }
}

/// Every error the API answers: JSON with a stable code, the HTTP status, what failed and what
/// to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub status: u16,
    pub message: String,
    pub hint: String,
    /// The same as `message` (the only field of the first v1 answers; kept for their clients).
    pub error: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: String, hint: Option<String>) -> ErrorBody {
        ErrorBody {
            code,
            status: code.http_status(),
            error: message.clone(),
            message,
            hint: hint.unwrap_or_else(|| code.default_hint().to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    /// The codes are part of v1: their names and statuses never change (docs/json.md).
    #[test]
    fn error_codes_keep_their_names_and_statuses() {
        let named: Vec<(String, u16)> = ErrorCode::ALL
            .iter()
            .map(|c| {
                (
                    serde_json::to_value(c)
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_string(),
                    c.http_status(),
                )
            })
            .collect();
        let expected = [
            ("invalid_request", 400),
            ("unauthorized", 401),
            ("forbidden", 403),
            ("not_found", 404),
            ("busy", 409),
            ("frozen", 409),
            ("conflict", 409),
            ("failed", 500),
            ("internal", 500),
            ("unavailable", 503),
        ];
        assert_eq!(named, expected.map(|(n, s)| (n.to_string(), s)).to_vec());
        for code in ErrorCode::ALL {
            assert_eq!(
                ErrorCode::from_http_status(code.http_status()) == code,
                !matches!(
                    code,
                    ErrorCode::Busy | ErrorCode::Frozen | ErrorCode::Failed
                )
            );
            let doc = include_str!("../../../docs/json.md");
            let name = serde_json::to_value(code).unwrap();
            assert!(
                doc.contains(&format!("| `{}` |", name.as_str().unwrap())),
                "{code:?} undocumented"
            );
        }
    }
}
