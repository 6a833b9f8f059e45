//! The CLI's side of the API: finds the server through the state dir and speaks JSON to it.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client as HyperClient};
use hyper_util::rt::TokioExecutor;
use serde::{de::DeserializeOwned, Serialize};

use crate::api_types::{ErrorBody, ErrorCode};
use crate::state_dir;

pub struct Client {
    state_dir: PathBuf,
    http: HyperClient<HttpConnector, Full<Bytes>>,
}

/// Why a request got no answer from the API: the server is not there (or went away), or it
/// answered with an error (whose code, not text, says what kind).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    NoServer(String),
    #[error("{message}")]
    Api {
        status: StatusCode,
        code: ErrorCode,
        message: String,
        hint: String,
    },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl ClientError {
    /// A name that does not exist, found out by the CLI itself: the same error (and exit
    /// status) as the server's `not_found`.
    pub fn not_found(message: String) -> ClientError {
        ClientError::Api {
            status: StatusCode::NOT_FOUND,
            code: ErrorCode::NotFound,
            message,
            hint: ErrorCode::NotFound.default_hint().to_string(),
        }
    }
}

impl Client {
    pub fn new(state_dir: &Path) -> Client {
        Client {
            state_dir: state_dir.to_path_buf(),
            http: HyperClient::builder(TokioExecutor::new()).build(HttpConnector::new()),
        }
    }

    fn no_server(&self, why: &str) -> ClientError {
        let dir = self.state_dir.display();
        ClientError::NoServer(format!(
            "no runway server is running for state dir {dir} ({why}).\n\
             Start one with:  runway server --state-dir {dir}\n\
             (or point --state-dir / RUNWAY_STATE_DIR at the state dir of the server you mean)"
        ))
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.request(Method::GET, path, None::<&()>).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.request(Method::POST, path, Some(body)).await
    }

    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.request(Method::DELETE, path, None::<&()>).await
    }

    async fn request<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        // Read the server file on every request: a restarted server has a new address and token.
        let server = state_dir::read_trusted_server_file(&self.state_dir)
            .map_err(ClientError::Other)?
            .ok_or_else(|| self.no_server("no server.json in it"))?;
        let body = match body {
            Some(b) => Bytes::from(serde_json::to_vec(b).map_err(anyhow::Error::from)?),
            None => Bytes::new(),
        };
        let req = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", server.api))
            .header("authorization", format!("Bearer {}", server.token))
            .header("content-type", "application/json")
            .body(Full::new(body))
            .map_err(anyhow::Error::from)?;
        let resp = self.http.request(req).await.map_err(|e| {
            if e.is_connect() {
                self.no_server(&format!("nothing answers on {}", server.api))
            } else {
                ClientError::Other(anyhow!(
                    "talking to the runway server at {}: {e}",
                    server.api
                ))
            }
        })?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| anyhow!("reading the server's answer: {e}"))?
            .to_bytes();
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(body) => ClientError::Api {
                    status,
                    code: body.code,
                    message: body.message,
                    hint: body.hint,
                },
                // An older server's `{"error": ...}`, or not runway's answer at all (something
                // else listens there, or a proxy in between): the code from the status.
                Err(_) => {
                    let code = ErrorCode::from_http_status(status.as_u16());
                    #[derive(serde::Deserialize)]
                    struct OlderError {
                        error: String,
                    }
                    let message = match serde_json::from_slice::<OlderError>(&bytes) {
                        Ok(older) => older.error,
                        Err(_) => String::from_utf8_lossy(&bytes).trim().to_string(),
                    };
                    ClientError::Api {
                        status,
                        code,
                        message,
                        hint: code.default_hint().to_string(),
                    }
                }
            });
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| anyhow!("unexpected answer from the server: {e}").into())
    }
}
