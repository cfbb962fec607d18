//! A TCP forwarder on loopback that can be cut.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Forwards every connection it accepts to `target` until [`TcpRelay::cut`]:
/// then it closes its listener and every open connection, as a crashed
/// server or a pulled cable would.
#[derive(Debug)]
pub struct TcpRelay {
    address: SocketAddr,
    cut: CancellationToken,
    tasks: TaskTracker,
}

impl TcpRelay {
    /// Starts forwarding from a new loopback port to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port");
        let address = listener.local_addr().expect("reading the bound address");
        let cut = CancellationToken::new();
        let tasks = TaskTracker::new();
        let accept_cut = cut.clone();
        let accept_tasks = tasks.clone();
        tasks.spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    () = accept_cut.cancelled() => return,
                };
                let Ok((mut inbound, _)) = accepted else {
                    continue;
                };
                let connection_cut = accept_cut.clone();
                accept_tasks.spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        () = connection_cut.cancelled() => {}
                    }
                });
            }
        });
        Self {
            address,
            cut,
            tasks,
        }
    }

    /// The address to connect to instead of the target.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Closes the listener and every connection; new connections are refused.
    pub async fn cut(&self) {
        self.cut.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

impl Drop for TcpRelay {
    fn drop(&mut self) {
        self.cut.cancel();
    }
}
