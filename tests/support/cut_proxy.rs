#![allow(dead_code)]
//! A TCP proxy on 127.0.0.1 in front of a real SMTP server that cuts connections during DATA,
//! the way a flaky network does: the server may have the message, the client never hears back.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Where in DATA the proxy cuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// After forwarding the message's final dot, dropping the server's reply: the server
    /// accepted the message, the client cannot know.
    AfterEnd,
    /// Halfway through the message: the server never sees its end and keeps nothing.
    MidBody,
    /// Right after the server accepted a message: the connection dies while idle, the way a
    /// server closes connections it considers idle.
    AfterAccept,
}

/// The running proxy.
pub struct CutProxy {
    port: u16,
    cuts: Arc<AtomicUsize>,
}

impl CutProxy {
    /// Proxies to `127.0.0.1:upstream`, cutting the first `times` messages at `cut`.
    pub fn start(upstream: u16, cut: Cut, times: usize) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let cuts = Arc::new(AtomicUsize::new(0));
        let counter = cuts.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let counter = counter.clone();
                std::thread::spawn(move || relay(client, server, cut, times, &counter));
            }
        });
        CutProxy { port, cuts }
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connections cut so far.
    pub fn cuts(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }
}

fn relay(client: TcpStream, server: TcpStream, cut: Cut, times: usize, cuts: &AtomicUsize) {
    let cutting = Arc::new(AtomicBool::new(false));
    let closing = Arc::new(AtomicBool::new(false));
    let (Ok(mut from_client), Ok(mut to_client)) = (client.try_clone(), client.try_clone()) else {
        return;
    };
    let (Ok(mut to_server), Ok(mut from_server)) = (server.try_clone(), server.try_clone()) else {
        return;
    };
    // Server → client: replies pass unless a cut is under way.
    let (flag, after_reply) = (cutting.clone(), closing.clone());
    let back = std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = from_server.read(&mut buf) {
            if n == 0 || flag.load(Ordering::SeqCst) {
                break;
            }
            if to_client.write_all(&buf[..n]).is_err() || after_reply.load(Ordering::SeqCst) {
                break;
            }
        }
        let _ = to_client.shutdown(Shutdown::Both);
    });
    // Client → server, watching for DATA and the end of the message.
    let mut in_data = false;
    let mut seen = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = from_client.read(&mut buf) {
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        seen.extend_from_slice(chunk);
        if !in_data {
            if seen.windows(6).any(|w| w.eq_ignore_ascii_case(b"DATA\r\n")) {
                in_data = true;
                seen.clear();
            }
            if to_server.write_all(chunk).is_err() {
                break;
            }
            continue;
        }
        let ends = seen.windows(5).any(|w| w == b"\r\n.\r\n");
        let mine = || {
            cuts.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| {
                (c < times).then_some(c + 1)
            })
            .is_ok()
        };
        match cut {
            Cut::MidBody if mine() => {
                let half = chunk.len() / 2;
                let _ = to_server.write_all(&chunk[..half]);
                cutting.store(true, Ordering::SeqCst);
                break;
            }
            Cut::AfterEnd if ends && mine() => {
                cutting.store(true, Ordering::SeqCst);
                let _ = to_server.write_all(chunk);
                // Let the server take the message before the connection goes.
                std::thread::sleep(std::time::Duration::from_millis(200));
                break;
            }
            _ => {
                if ends {
                    in_data = false;
                    seen.clear();
                    if cut == Cut::AfterAccept && mine() {
                        closing.store(true, Ordering::SeqCst);
                    }
                }
                if to_server.write_all(chunk).is_err() {
                    break;
                }
            }
        }
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
    let _ = back.join();
}
