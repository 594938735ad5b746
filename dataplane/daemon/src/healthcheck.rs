//! `healthCheckNodePort` servers for `externalTrafficPolicy: Local` Services, as kube-proxy
//! serves them: 200 with the local endpoint count when this node has one, 503 otherwise.
//!
//! The LB thread publishes the table after every sync; one listener per port is started or
//! stopped to match.

use ferry_model::ObjectKey;
use ferry_model::lb::HealthCheck;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Node port -> the Service it reports on and its local endpoint count.
type Table = BTreeMap<u16, (ObjectKey, usize)>;

/// The publishing side, handed to the LB thread.
#[derive(Debug, Clone)]
pub struct HealthChecks {
    table: watch::Sender<Arc<Table>>,
}

impl HealthChecks {
    pub fn publish(&self, checks: &BTreeMap<ObjectKey, HealthCheck>) {
        let table: Table = checks
            .iter()
            .map(|(key, check)| (check.node_port, (key.clone(), check.local_endpoints)))
            .collect();
        self.table.send_if_modified(|current| {
            if **current == table {
                return false;
            }
            *current = Arc::new(table);
            true
        });
    }
}

/// Starts the manager task: it keeps one listener per health check port.
pub fn start() -> (HealthChecks, JoinHandle<()>) {
    let (tx, mut rx) = watch::channel(Arc::new(Table::new()));
    let task = tokio::spawn(async move {
        let mut running: HashMap<u16, JoinHandle<()>> = HashMap::new();
        loop {
            let table = rx.borrow_and_update().clone();
            let wanted: Vec<u16> = table.keys().copied().collect();
            running.retain(|port, task| {
                let keep = wanted.contains(port);
                if !keep {
                    task.abort();
                }
                keep
            });
            for port in wanted {
                if running.contains_key(&port) {
                    continue;
                }
                match bind(port) {
                    Ok(listener) => {
                        running.insert(port, tokio::spawn(serve(listener, port, rx.clone())));
                    }
                    Err(error) => {
                        tracing::error!(port, %error, "lb: cannot serve a health check node port");
                    }
                }
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    });
    (HealthChecks { table: tx }, task)
}

/// Listens on every address of both families (`[::]`, dual stack), or IPv4 only where the
/// host has no IPv6.
fn bind(port: u16) -> std::io::Result<TcpListener> {
    let listener = std::net::TcpListener::bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)))
        .or_else(|_| {
            std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))
        })?;
    listener.set_nonblocking(true)?;
    TcpListener::from_std(listener)
}

async fn serve(listener: TcpListener, port: u16, table: watch::Receiver<Arc<Table>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let table = table.clone();
        tokio::spawn(async move {
            let service = service_fn(move |_request| {
                let entry = table.borrow().get(&port).cloned();
                async move { Ok::<_, Infallible>(answer(entry)) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer(entry: Option<(ObjectKey, usize)>) -> Response<Full<Bytes>> {
    let (key, local) = entry.unwrap_or_else(|| (ObjectKey::new("", ""), 0));
    let body = serde_json::json!({
        "service": {"namespace": key.namespace, "name": key.name},
        "localEndpoints": local,
        "serviceProxyHealthy": true,
    });
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = if local > 0 {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        "x-content-type-options",
        hyper::header::HeaderValue::from_static("nosniff"),
    );
    response
}
