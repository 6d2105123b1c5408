//! Loopback ports for the processes a test starts.

use std::net::{TcpListener, TcpStream};
use std::sync::Mutex;

/// A loopback port nothing listens on right now: the kernel picks it, the listener that
/// asked is closed at once. Another process could take it before the test does; on a
/// test machine that is rare enough to live with (the same trade every harness makes).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// `n` free ports nobody serves, each refusing a connect now, none handed out before in
/// this test process. The agent turns a refused connect into one `connection_refused`
/// evidence per port, so a port used once per process makes "exactly once per port"
/// countable.
pub fn refuse_ports(n: usize) -> Vec<u16> {
    static USED: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut used = USED.lock().expect("ports");
    let mut out = Vec::new();
    while out.len() < n {
        let p = free_port();
        if used.contains(&p) {
            continue;
        }
        used.push(p);
        assert!(TcpStream::connect(("127.0.0.1", p)).is_err());
        out.push(p);
    }
    out
}
