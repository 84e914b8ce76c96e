#![allow(dead_code)]
//! A small HTTP/1.1 client for the web face's tests: whole requests, and the slow or oversized
//! ones a stranger could send, over plain sockets to 127.0.0.1.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::fixture::Fixture;
use super::smtp_server::TestSmtpServer;

/// An answer: the status code, the headers (names in lower case) and the body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// The first header called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `raw` (a whole request, `Connection: close`) and reads the answer.
pub fn raw(port: u16, raw: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the web face");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream.write_all(raw).expect("send the request");
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    parse(&bytes)
}

/// Reads an answer from its bytes.
pub fn parse(bytes: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

/// `GET path` (with its query).
pub fn get(port: u16, path: &str) -> Answer {
    get_from(port, path, None)
}

/// `GET path` as a reverse proxy on this machine would send it for `client`.
pub fn get_from(port: u16, path: &str, client: Option<&str>) -> Answer {
    let forwarded = client
        .map(|c| format!("X-Forwarded-For: {c}\r\n"))
        .unwrap_or_default();
    raw(
        port,
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{forwarded}Connection: close\r\n\r\n")
            .as_bytes(),
    )
}

/// `POST path` with a urlencoded `body`.
pub fn post(port: u16, path: &str, body: &str) -> Answer {
    raw(
        port,
        format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

/// The path and query of `link` (`http://127.0.0.1:port/unsubscribe?c=…`).
pub fn path_of(link: &str) -> String {
    let rest = link.split_once("://").map_or(link, |(_, r)| r);
    rest.find('/')
        .map_or("/".to_string(), |i| rest[i..].to_string())
}

/// Writes the config: `transport`, `rest`, and `[http]` on a free port with `http_extra`; the
/// link secret in `secret`. Returns the port.
pub fn configure(f: &Fixture, transport: &str, rest: &str, http_extra: &str, secret: &str) -> u16 {
    let port = super::ports::free_port();
    std::fs::write(f.path("link-secret"), secret).expect("write the secret");
    let http = format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n{http_extra}\n"
    );
    f.config(transport, &format!("{http}\n{rest}"));
    let config = std::fs::read_to_string(f.path("rekindle.toml")).expect("read");
    let config = config.replace(
        "unsubscribe_mailto = ",
        "unsubscribe_secret_file = \"link-secret\"\nunsubscribe_mailto = ",
    );
    std::fs::write(f.path("rekindle.toml"), config).expect("write");
    port
}

/// The customer's link in the note `to` received.
pub fn link_in(server: &TestSmtpServer, to: &str) -> String {
    let got = server.wait_for(1, Duration::from_secs(10));
    let note = got.iter().find(|m| m.to == [to]).expect("a note");
    assert_eq!(
        note.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click"),
        "rekindle serves the link, so it offers one-click"
    );
    let header = note.header("List-Unsubscribe").expect("List-Unsubscribe");
    let link = header
        .split(['<', '>'])
        .find(|p| p.starts_with("http"))
        .expect("an http link");
    link.to_string()
}
