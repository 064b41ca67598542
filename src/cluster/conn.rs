//! The apiserver client's connections: few, and reused.
//!
//! kube-rs speaks HTTP/1.1, one request per connection at a time, and its pool opens a new
//! connection (a TCP connect and a full TLS handshake, which costs the apiserver more than a GET)
//! for every request that finds no idle one. A `klab check` sends all of a drill's checks at
//! once, so it used to open one connection per check. Here at most [`CONNECTIONS`] connections
//! are open at a time: a request beyond them waits for one to come free (the pool hands it over
//! as soon as a response is read), and only when none has for [`CONNECTION_WAIT`] (a hung
//! apiserver) does it open another. Every timeout of kube-rs's own client stays as it is; the
//! stack is kube-rs's `Client::try_from(config)`, with the connector wrapped.

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use kube::client::ConfigExt;
use kube::{Client, Config};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{BoxError, Service, ServiceBuilder};

/// Connections open at once before a request waits for one to come free.
pub const CONNECTIONS: usize = 4;
/// How long a request waits for a free connection before it opens another anyway. An answer on a
/// local apiserver takes milliseconds; connections busy for longer carry long calls (exec, logs)
/// or a server that hangs, and then another connection is what the request needs.
pub const CONNECTION_WAIT: Duration = Duration::from_millis(250);

/// A client like `Client::try_from(config)`, opening at most [`CONNECTIONS`] connections while
/// they answer. A proxied config takes kube-rs's own client unchanged.
pub fn client(config: Config) -> Result<Client, kube::Error> {
    if config.proxy_url.is_some() {
        return Client::try_from(config);
    }
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    // A resumed TLS handshake ends with the client's Finished, which the apiserver does not
    // answer at once: with Nagle's algorithm on, the request written right after it waits for
    // the delayed ACK (40 ms). Go's clients (kubectl) set TCP_NODELAY too.
    tcp.set_nodelay(true);
    let https = config.rustls_https_connector_with_connector(tcp)?;
    let mut timeouts = hyper_timeout::TimeoutConnector::new(https);
    timeouts.set_connect_timeout(config.connect_timeout);
    timeouts.set_read_timeout(config.read_timeout);
    timeouts.set_write_timeout(config.write_timeout);
    timeouts.set_reset_reader_on_write(config.reset_reader_on_write);
    let connector = FewConnections::new(timeouts, CONNECTIONS, CONNECTION_WAIT);
    let http: hyper_util::client::legacy::Client<_, kube::client::Body> =
        hyper_util::client::legacy::Builder::new(hyper_util::rt::TokioExecutor::new()).build(connector);
    let retry =
        config.default_retry.then(|| tower::retry::RetryLayer::new(kube::client::retry::RetryPolicy::server_retry()));
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(retry)
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BoxError::from)
        .service(http);
    Ok(Client::new(service, config.default_namespace))
}

/// A connector that holds a slot for each connection it made, for as long as it is open.
#[derive(Clone)]
pub struct FewConnections<C> {
    inner: C,
    slots: Arc<Semaphore>,
    wait: Duration,
}

impl<C> FewConnections<C> {
    pub fn new(inner: C, connections: usize, wait: Duration) -> Self {
        FewConnections { inner, slots: Arc::new(Semaphore::new(connections)), wait }
    }
}

impl<C> Service<Uri> for FewConnections<C>
where
    C: Service<Uri> + Clone + Send + 'static,
    C::Future: Send + 'static,
    C::Response: Send + 'static,
{
    type Response = Slotted<C::Response>;
    type Error = C::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        // The instance polled ready is the one to call; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (slots, wait) = (self.slots.clone(), self.wait);
        Box::pin(async move {
            // While waiting, the pool may hand the request a connection that came free; then this
            // connect is dropped, or finishes in the background into the pool.
            let slot = tokio::time::timeout(wait, slots.acquire_owned()).await.ok().and_then(Result::ok);
            let io = inner.call(uri).await?;
            Ok(Slotted { io, _slot: slot })
        })
    }
}

/// A connection and the slot it holds (none when it was opened past the limit).
pub struct Slotted<T> {
    io: T,
    _slot: Option<OwnedSemaphorePermit>,
}

impl<T: Connection> Connection for Slotted<T> {
    fn connected(&self) -> Connected {
        self.io.connected()
    }
}

impl<T: hyper::rt::Read + Unpin> hyper::rt::Read for Slotted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: hyper::rt::Write + Unpin> hyper::rt::Write for Slotted<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}
