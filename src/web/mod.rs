//! The web face (`[http]`): the one-click unsubscribe and the preferences page customers reach
//! from a note's link ([`customer`]), `/healthz` for a monitor and `/metrics` for Prometheus
//! ([`metrics`]).
//!
//! It listens on `[http] listen`, meant to sit behind the business's reverse proxy (which
//! terminates TLS), and speaks HTTP/1.1 (hyper, under axum's router). What a stranger on the
//! internet can do to it is bounded: a request's head must arrive within `request_timeout` and
//! its whole within the same again (else 408 and the connection closes), a body is at most
//! [`MAX_BODY`] (413), at most [`MAX_CONNECTIONS`] connections are open at once (more are closed
//! at once), and each client address gets `rate_limit` requests a minute to the customer pages
//! (429 after). Behind the proxy, the client's address is the last one the proxy added to
//! `X-Forwarded-For` (or `X-Real-IP`), trusted only from a peer on this machine.

mod customer;
mod metrics;
mod page;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;
use tracing::{debug, info, warn};

use crate::config::http::Http;
use crate::load::Loaded;

/// The largest request body taken (a preferences form is a few hundred bytes).
pub(crate) const MAX_BODY: usize = 16 * 1024;

/// Connections open at once; more are closed as they come.
pub(crate) const MAX_CONNECTIONS: usize = 256;

/// What the web face needs of the daemon.
pub(crate) struct Context {
    /// The configuration in force (it follows reloads).
    pub loaded: Box<dyn Fn() -> Arc<Loaded> + Send + Sync>,
    /// The loops showing no progress, by name (none: healthy), as the watchdog judges them.
    pub stuck: Box<dyn Fn() -> Vec<&'static str> + Send + Sync>,
    /// How long ago each loop last showed progress, in seconds.
    pub beats: Box<dyn Fn() -> Vec<(&'static str, f64)> + Send + Sync>,
}

/// The state every request shares.
struct Web {
    context: Context,
    /// Requests a minute per client address, for the customer pages.
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// When the link-signing secret in force was first seen (see `customer::rotation`).
    rotation: std::sync::Mutex<Option<customer::Rotation>>,
}

/// Binds `[http] listen` (an error says where and what to do).
pub(crate) async fn bind(http: &Http) -> Result<TcpListener, crate::error::Error> {
    TcpListener::bind(http.listen).await.map_err(|e| {
        crate::error::Error::io(
            "listen on [http] listen",
            format!(
                "{} (is another program on that port? choose another in [http] listen)",
                http.listen
            ),
            e,
        )
    })
}

/// Serves requests on `listener` until `stop` completes.
pub(crate) async fn serve(
    listener: TcpListener,
    http: &Http,
    context: Context,
    stop: impl std::future::Future<Output = ()>,
) {
    let per_minute =
        std::num::NonZeroU32::new(http.rate_limit).unwrap_or(std::num::NonZeroU32::MIN);
    let web = Arc::new(Web {
        context,
        limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
        rotation: std::sync::Mutex::new(None),
    });
    let timeout = http.request_timeout.unsigned_abs();
    let app = router(web.clone(), timeout);
    let open = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut forget = tokio::time::interval(Duration::from_secs(60));
    info!(listen = %http.listen, public_url = %http.public_url, "web face listening");
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, say: wait a moment rather than spin.
                    warn!(error = %err, "web face: cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = forget.tick() => {
                web.limiter.retain_recent();
                let web = web.clone();
                tokio::task::spawn_blocking(move || customer::note_rotation(&web));
                continue;
            }
            _ = &mut stop => return,
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            debug!(peer = %peer, "web face: too many connections; closing this one");
            continue;
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |mut request| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                app.clone().oneshot(request)
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(timeout)
                .max_buf_size(MAX_BODY)
                .serve_connection(TokioIo::new(stream), service);
            // A connection may carry several requests, but not for ever.
            let lifetime = timeout * 30;
            match tokio::time::timeout(lifetime, connection).await {
                Ok(Err(err)) => debug!(peer = %peer, error = %err, "web face: connection ended"),
                Err(_) => debug!(peer = %peer, "web face: connection open too long; closed"),
                Ok(Ok(())) => {}
            }
            drop(permit);
        });
    }
}

/// The routes and the limits on each request.
fn router(web: Arc<Web>, timeout: Duration) -> Router {
    Router::new()
        .route("/unsubscribe", get(customer::show).post(customer::change))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::scrape))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .with_state(web)
}

/// `GET /healthz`: 200 while the scheduler, the event watcher and the delivery loop all make
/// progress (the watchdog's own judgement), else 503 naming the stuck ones.
async fn healthz(State(web): State<Arc<Web>>) -> Response {
    let stuck = (web.context.stuck)();
    let plain = [
        (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    match stuck.is_empty() {
        true => (StatusCode::OK, plain, "ok\n").into_response(),
        false => (
            StatusCode::SERVICE_UNAVAILABLE,
            plain,
            format!("stuck: {}\n", stuck.join(", ")),
        )
            .into_response(),
    }
}

/// Anything else.
async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "not found\n",
    )
        .into_response()
}

/// The address a request comes from: the peer, or behind a proxy on this machine the client
/// the proxy names (the last address it added to `X-Forwarded-For`, else `X-Real-IP`).
fn client(peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    if !peer.ip().is_loopback() {
        return peer.ip();
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .next_back();
    let real = || {
        headers
            .get("x-real-ip")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
    };
    forwarded.or_else(real).unwrap_or(peer.ip())
}

/// An HTML page with the headers every customer page carries: never cached (it holds a
/// personal link), never framed, no referrer (the link's token must not leak to another site),
/// nothing run or loaded but its own inline style.
fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_the_peer_unless_a_proxy_on_this_machine_names_it() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7".parse().unwrap(),
        );
        let proxy: SocketAddr = "127.0.0.1:5555".parse().unwrap();
        let stranger: SocketAddr = "192.0.2.1:5555".parse().unwrap();
        assert_eq!(
            client(proxy, &headers),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client(stranger, &headers),
            stranger.ip(),
            "a forged header from outside"
        );
        let mut real = HeaderMap::new();
        real.insert("x-real-ip", "2001:db8::1".parse().unwrap());
        assert_eq!(
            client(proxy, &real),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client(proxy, &HeaderMap::new()), proxy.ip());
    }
}
