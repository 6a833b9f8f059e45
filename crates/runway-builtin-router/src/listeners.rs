//! Listening sockets that outlive a server process.
//!
//! A service's listener is normally bound by its router. Two things can hand one over
//! instead, so that connections wait in the socket's backlog rather than being refused
//! while no runway runs:
//!
//! * systemd socket activation (`runway.socket`): systemd binds the addresses and keeps
//!   them open across crashes and restarts of `runway server`, passing them to each start;
//! * an upgrade: a new `runway server` asks the running one for its listeners (see
//!   runway-server's handover.rs).
//!
//! [`adopt`] gives the router such listeners; [`BuiltinRouter::bind`](crate::BuiltinRouter)
//! takes the one whose address is the service's `listen` before binding anew. Each router's
//! listener is also [`live`]: a duplicate of its descriptor is kept so that the server can
//! hand every service's listener to its successor.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

/// Listeners handed to this process and not taken by a service yet.
static ADOPTED: Mutex<Vec<TcpListener>> = Mutex::new(Vec::new());
/// A duplicate of each serving router's listener, by service.
static LIVE: Mutex<BTreeMap<String, (SocketAddr, OwnedFd)>> = Mutex::new(BTreeMap::new());

/// Gives the routers listeners bound elsewhere (systemd, the previous server).
pub fn adopt(listeners: Vec<TcpListener>) {
    ADOPTED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(listeners);
}

/// Takes the adopted listener bound to `addr`, if there is one.
pub(crate) fn take_adopted(addr: SocketAddr) -> Option<TcpListener> {
    let mut adopted = ADOPTED.lock().unwrap_or_else(|e| e.into_inner());
    let at = adopted
        .iter()
        .position(|l| l.local_addr().is_ok_and(|a| a == addr))?;
    Some(adopted.swap_remove(at))
}

/// Records `service`'s listener as live (a duplicate of its descriptor).
pub(crate) fn set_live(service: &str, listener: &tokio::net::TcpListener) {
    let (Ok(addr), Ok(fd)) = (listener.local_addr(), listener.as_fd().try_clone_to_owned()) else {
        return;
    };
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(service.to_owned(), (addr, fd));
}

/// Forgets `service`'s listener (its router closed it).
pub(crate) fn unset_live(service: &str) {
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(service);
}

/// Every serving router's listener, as a new duplicate each: service, address, descriptor.
pub fn live() -> Vec<(String, SocketAddr, OwnedFd)> {
    let live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    live.iter()
        .filter_map(|(service, (addr, fd))| Some((service.clone(), *addr, fd.try_clone().ok()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_adopted_listener_is_taken_by_its_address_once() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        adopt(vec![listener]);
        let other: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert!(take_adopted(other).is_none());
        let taken = take_adopted(addr).unwrap();
        assert_eq!(taken.local_addr().unwrap(), addr);
        assert!(take_adopted(addr).is_none());

        taken.set_nonblocking(true).unwrap();
        let taken = tokio::net::TcpListener::from_std(taken).unwrap();
        set_live("svc", &taken);
        let live = live();
        assert_eq!(live.len(), 1);
        assert_eq!((live[0].0.as_str(), live[0].1), ("svc", addr));
        unset_live("svc");
        assert!(super::live().is_empty());
    }
}
