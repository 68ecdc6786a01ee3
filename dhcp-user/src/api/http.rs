//! The HTTP shell around [`super::command`]: routes, body limit, basic
//! auth, and Kea's control-agent framing. Status codes: 200 for every
//! answered command (Kea's `result` carries success or failure), 400 for a
//! body that is not a command, 401 without valid credentials, 403 for a
//! command the listener does not answer ([`super::access`]), 413 for a
//! body over [`MAX_BODY`].
//!
//! - `POST /`: a Kea command.
//! - `GET /metrics`: Prometheus text format.
//! - `GET /`: status page; `GET /status.json`: what it polls.
//!
//! With TLS configured ([`super::tls`]) the same router is served over
//! HTTPS; basic auth still applies on top, as in Kea.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Extension, Request as HttpRequest, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use base64::Engine as _;
use serde_json::{Value, json};

use super::{ApiState, Listener, command};

/// Largest request body accepted. A full `config-set` of a big site is a
/// few hundred kilobytes; anything larger is refused before parsing.
pub const MAX_BODY: usize = 4 << 20;

/// The only service this server answers for.
const SERVICE: &str = "dhcp4";

/// The control listener's router over `state` (no socket: tests drive it
/// with `oneshot`).
pub fn router(state: Arc<ApiState>) -> Router {
    router_for(state, Listener::Control)
}

/// The router of a `listener`: the HA peer listener refuses, with Kea
/// 3.0's 403 answer, the commands its [`Listener`] does not permit.
pub fn router_for(state: Arc<ApiState>, listener: Listener) -> Router {
    Router::new()
        .route("/", get(super::status::page).post(command))
        .route("/metrics", get(super::metrics::handler))
        .route("/status.json", get(super::status::json))
        .layer(Extension(listener))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), auth))
        .with_state(state)
}

/// Binds `addr` and serves until shutdown; logs (never panics) on failure.
/// The daemon uses [`super::bind`] to fail start-up on a busy port instead.
pub async fn serve(state: Arc<ApiState>, addr: SocketAddr) {
    match super::bind(state, addr, Listener::Control).await {
        Ok((local, fut)) => {
            tracing::info!(%local, "control API listening");
            fut.await
        }
        Err(e) => tracing::error!(%addr, error = %e, "control API: cannot listen"),
    }
}

/// Serves an already bound listener until `state.shutdown` fires: HTTPS
/// when `state.tls` is set (every connection must complete the handshake,
/// with a client certificate if required, before any route or the basic
/// auth check sees a byte), plain HTTP otherwise.
pub(crate) async fn serve_on(listener: tokio::net::TcpListener, state: Arc<ApiState>, access: Listener) {
    let token = state.shutdown.clone();
    let tls = state.tls.clone();
    let app = router_for(state, access);
    let stopped = {
        let token = token.clone();
        async move { token.cancelled().await }
    };
    let result = match tls {
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
        }
        Some(tls) => {
            let s = &tls.settings;
            tracing::info!(
                source = %s.source,
                trust_anchor = %s.files.trust_anchor.display(),
                cert_file = %s.files.cert_file.display(),
                client_certs = if s.require_client_certs { "required" } else { "optional" },
                "control API: HTTPS"
            );
            match super::tls::TlsListener::new(listener, tls.config, token) {
                Ok(l) => axum::serve(l, app).with_graceful_shutdown(stopped).await,
                Err(e) => Err(e),
            }
        }
    };
    if let Err(e) = result {
        tracing::error!(error = %e, "control API stopped");
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Rejects requests without the configured credentials. Kea's control
/// agent answers 401 with this body; nothing runs. Credentials are compared
/// in constant time and never logged (only the fact of a failure is).
async fn auth(State(state): State<Arc<ApiState>>, req: HttpRequest, next: Next) -> Response {
    let Some(creds) = &state.auth else {
        return next.run(req).await;
    };
    if authorized(req.headers(), &creds.user, creds.password.expose()) {
        return next.run(req).await;
    }
    tracing::warn!(path = %req.uri().path(), "control API: request without valid credentials refused");
    let mut r = json_response(
        StatusCode::UNAUTHORIZED,
        &json!({ "result": 401, "text": "Unauthorized" }),
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"xdhcpd\""),
    );
    r
}

fn authorized(headers: &HeaderMap, user: &str, password: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(b64) = given
        .strip_prefix("Basic ")
        .or_else(|| given.strip_prefix("basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
        return false;
    };
    let expected = format!("{user}:{password}");
    constant_time_eq(&decoded, expected.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i % b.len().max(1)).copied().unwrap_or(0));
    }
    diff == 0
}

/// `POST /`: one Kea command. With `service`, the answer is an array with
/// one answer per service, as Kea's control agent sends.
async fn command(State(state): State<Arc<ApiState>>, Extension(listener): Extension<Listener>, body: Body) -> Response {
    let bytes: Bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return json_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                &json!({ "result": 1, "text": format!("request body larger than {MAX_BODY} bytes") }),
            );
        }
    };
    let req = match command::Request::parse(&bytes) {
        Ok(r) => r,
        Err(e) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({ "result": 1, "text": e.to_string() }),
            );
        }
    };
    if !listener.permits(&req.command) {
        tracing::warn!(command = %req.command, "HA peer listener: command refused (restrict-commands)");
        return json_response(StatusCode::FORBIDDEN, &json!({ "result": 403, "text": "Forbidden" }));
    }
    match &req.service {
        None => json_response(
            StatusCode::OK,
            &command::dispatch(&state, &req).await.to_json(),
        ),
        Some(services) => {
            let mut out = Vec::new();
            if services.is_empty() {
                out.push(command::dispatch(&state, &req).await.to_json());
            }
            for s in services {
                if s == SERVICE {
                    out.push(command::dispatch(&state, &req).await.to_json());
                } else {
                    out.push(json!({
                        "result": 1,
                        "text": format!("forwarding socket is not configured for the server type {s}"),
                    }));
                }
            }
            json_response(StatusCode::OK, &Value::Array(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_header() {
        let mut h = HeaderMap::new();
        assert!(!authorized(&h, "u", "p"));
        let v = base64::engine::general_purpose::STANDARD.encode("u:p");
        h.insert(header::AUTHORIZATION, format!("Basic {v}").parse().unwrap());
        assert!(authorized(&h, "u", "p"));
        assert!(!authorized(&h, "u", "q"));
        assert!(!authorized(&h, "u", "pp"));
        assert!(!authorized(&h, "", ""));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"a", b""));
    }
}
