#![allow(dead_code)]
//! Free ports on 127.0.0.1 for the servers the tests start.

use std::net::TcpListener;

/// A port of 127.0.0.1 that was free a moment ago, with nothing listening (yet).
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

/// `n` distinct free ports: all are held until all are found, so that none repeats.
pub fn free_ports(n: usize) -> Vec<u16> {
    let bind = |_| TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0 for a free port");
    let held: Vec<TcpListener> = (0..n).map(bind).collect();
    held.iter()
        .map(|l| l.local_addr().expect("the bound port").port())
        .collect()
}
