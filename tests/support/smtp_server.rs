#![allow(dead_code)]
//! A real SMTP server for tests: mailin-embedded on 127.0.0.1 with a random port, recording what
//! it accepts and answering each DATA with the reply a test asks for (250, 451 or 550). A
//! recipient whose address starts with `refused` is refused at RCPT with 550, one starting with
//! `greylisted` with 450. mailin reads commands line by line, so it copes with pipelined ones,
//! but does not offer PIPELINING: [`TestSmtpServer::pipelining`] puts a front on it that does.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailin_embedded::{Action, Handler, Response, Server, response};

/// A message the server accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// MAIL FROM.
    pub from: String,
    /// RCPT TO, in order.
    pub to: Vec<String>,
    /// The raw message (headers and body) as sent.
    pub data: String,
    /// When the server accepted it.
    pub at: Instant,
}

/// How the server answers one DATA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// 250: accepted.
    Accept,
    /// 451 at the end of DATA.
    Transient,
    /// 550 at the end of DATA.
    Permanent,
}

type Policy = Arc<dyn Fn(usize) -> Reply + Send + Sync>;

#[derive(Default)]
struct Shared {
    accepted: Vec<Received>,
    attempts: usize,
}

#[derive(Clone)]
struct Recorder {
    shared: Arc<Mutex<Shared>>,
    policy: Policy,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Recorder {
    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.from = from.to_string();
        self.to = to.to_vec();
        self.data.clear();
        response::START_DATA
    }

    fn data(&mut self, buf: &[u8]) -> io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        let attempt = shared.attempts;
        shared.attempts += 1;
        match (self.policy)(attempt) {
            Reply::Accept => {
                shared.accepted.push(Received {
                    from: std::mem::take(&mut self.from),
                    to: std::mem::take(&mut self.to),
                    data: String::from_utf8_lossy(&self.data).into_owned(),
                    at: Instant::now(),
                });
                response::OK
            }
            // mailin stays in its DATA state after an error reply, so the server closes the
            // connection after one (as real servers may): the client must reconnect.
            Reply::Transient => closing(Response::custom(451, "4.3.0 try again later".into())),
            Reply::Permanent => {
                closing(Response::custom(550, "5.1.1 mailbox does not exist".into()))
            }
        }
    }

    fn helo(&mut self, _ip: IpAddr, _domain: &str) -> Response {
        response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        if to.starts_with("refused") {
            Response::custom(550, "5.1.1 no such mailbox here".into())
        } else if to.starts_with("greylisted") {
            Response::custom(450, "4.2.0 greylisted, try again later".into())
        } else {
            response::OK
        }
    }
}

/// Server → client, with PIPELINING added to mailin's EHLO reply, whose keyword lines are
/// `250-8BITMIME` or, as the last line, `250 8BITMIME` (written at once, so it arrives in one
/// read).
fn advertise_pipelining(mut from_server: TcpStream, mut to_client: TcpStream) {
    let edits: [(&[u8], &[u8]); 2] = [
        (b"250 8BITMIME\r\n", b"250-8BITMIME\r\n250 PIPELINING\r\n"),
        (b"250-8BITMIME\r\n", b"250-8BITMIME\r\n250-PIPELINING\r\n"),
    ];
    let mut buf = [0u8; 8192];
    while let Ok(n) = from_server.read(&mut buf) {
        if n == 0 {
            break;
        }
        let mut chunk = buf[..n].to_vec();
        for (line, with) in edits {
            if let Some(at) = chunk.windows(line.len()).position(|w| w == line) {
                chunk.splice(at..at + line.len(), with.iter().copied());
                break;
            }
        }
        if to_client.write_all(&chunk).is_err() {
            break;
        }
    }
    let _ = to_client.shutdown(Shutdown::Both);
}

fn closing(mut response: Response) -> Response {
    response.action = Action::Close;
    response
}

/// The running server. It lives until the test process ends.
pub struct TestSmtpServer {
    port: u16,
    shared: Arc<Mutex<Shared>>,
    /// Behind a PIPELINING front: how many times a client sent MAIL and DATA in one write.
    pipelined: Arc<AtomicUsize>,
    /// Behind a PIPELINING front: how many times a client wrote a note's MAIL right behind the
    /// end of the message before it.
    behind: Arc<AtomicUsize>,
}

impl TestSmtpServer {
    /// A server that accepts everything.
    pub fn start() -> Self {
        Self::with_replies(|_| Reply::Accept)
    }

    /// A server whose answer to the n-th DATA (0-based, over its whole life) is `f(n)`.
    pub fn with_replies(f: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Self {
        Self::serve(
            TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"),
            f,
        )
    }

    /// A server that accepts everything, on a port chosen earlier (to start it late).
    pub fn start_on(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the reserved port");
        Self::serve(listener, |_| Reply::Accept)
    }

    fn serve(listener: TcpListener, f: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Self {
        let port = listener.local_addr().expect("local addr").port();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let handler = Recorder {
            shared: shared.clone(),
            policy: Arc::new(f),
            from: String::new(),
            to: Vec::new(),
            data: Vec::new(),
        };
        std::thread::spawn(move || {
            let mut server = Server::new(handler);
            server
                .with_name("test.smtp.local")
                .with_tcp_listener(listener);
            let _ = server.serve();
        });
        TestSmtpServer {
            port,
            shared,
            pipelined: Arc::default(),
            behind: Arc::default(),
        }
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The same server behind a front that adds PIPELINING (RFC 2920) to its EHLO reply and
    /// relays everything else as it is: clients that pipeline may do so here.
    pub fn pipelining(self) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the front");
        let port = listener.local_addr().expect("front addr").port();
        let upstream = self.port;
        let (pipelined, behind) = (self.pipelined.clone(), self.behind.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (Ok(mut from_client), Ok(mut to_server)) =
                    (client.try_clone(), server.try_clone())
                else {
                    continue;
                };
                let (pipelined, behind) = (pipelined.clone(), behind.clone());
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok(n) = from_client.read(&mut buf) {
                        let chunk = &buf[..n];
                        let has = |word: &[u8]| chunk.windows(word.len()).any(|w| w == word);
                        if has(b"MAIL FROM:") && has(b"DATA\r\n") {
                            pipelined.fetch_add(1, Ordering::SeqCst);
                        }
                        if has(b"\r\n.\r\nMAIL FROM:") {
                            behind.fetch_add(1, Ordering::SeqCst);
                        }
                        if n == 0 || to_server.write_all(chunk).is_err() {
                            break;
                        }
                    }
                    let _ = to_server.shutdown(Shutdown::Write);
                });
                std::thread::spawn(move || advertise_pipelining(server, client));
            }
        });
        TestSmtpServer { port, ..self }
    }

    /// Behind [`TestSmtpServer::pipelining`]: how many transactions a client pipelined (MAIL,
    /// RCPT and DATA in one write).
    pub fn pipelined(&self) -> usize {
        self.pipelined.load(Ordering::SeqCst)
    }

    /// Behind [`TestSmtpServer::pipelining`]: how many notes a client announced behind the
    /// message before them (their MAIL right after that message's final dot, in one write).
    pub fn behind(&self) -> usize {
        self.behind.load(Ordering::SeqCst)
    }

    /// Messages accepted so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .accepted
            .clone()
    }

    /// Waits until at least `n` messages were accepted, or `deadline` passed.
    pub fn wait_for(&self, n: usize, deadline: Duration) -> Vec<Received> {
        let until = Instant::now() + deadline;
        loop {
            let got = self.received();
            if got.len() >= n || Instant::now() >= until {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Received {
    /// The header `name` (case-insensitive), unfolded, RFC 2047 words decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        header_in(head(&self.data), name).map(|v| decode_words(&v))
    }

    /// The Message-ID header.
    pub fn message_id(&self) -> Option<String> {
        self.header("Message-ID")
    }

    /// The Subject header, decoded.
    pub fn subject(&self) -> Option<String> {
        self.header("Subject")
    }

    /// The text/plain part, decoded.
    pub fn text_body(&self) -> String {
        self.part("text/plain").unwrap_or_default()
    }

    /// The text/html part, decoded, if there is one.
    pub fn html_body(&self) -> Option<String> {
        self.part("text/html")
    }

    fn part(&self, mime: &str) -> Option<String> {
        let normalized = self.data.replace("\r\n", "\n");
        let (headers, body) = normalized.split_once("\n\n").unwrap_or((&normalized, ""));
        let content_type =
            header_in(headers, "Content-Type").unwrap_or_else(|| "text/plain".into());
        if let Some(boundary) = boundary(&content_type) {
            let marker = format!("--{boundary}");
            return body
                .split(&marker)
                .filter_map(|p| p.strip_prefix('\n'))
                .find_map(|p| {
                    let (h, b) = p.split_once("\n\n")?;
                    let ct = header_in(h, "Content-Type")?;
                    ct.starts_with(mime).then(|| decode_body(h, b))
                });
        }
        content_type
            .starts_with(mime)
            .then(|| decode_body(headers, body))
    }
}

fn head(data: &str) -> &str {
    data.split("\r\n\r\n").next().unwrap_or(data)
}

/// A header's value, unfolded.
fn header_in(headers: &str, name: &str) -> Option<String> {
    let mut value: Option<String> = None;
    for line in headers.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(v) = value.as_mut() {
            if line.starts_with([' ', '\t']) {
                v.push(' ');
                v.push_str(line.trim());
                continue;
            }
            break;
        }
        if let Some((n, v)) = line.split_once(':')
            && n.eq_ignore_ascii_case(name)
        {
            value = Some(v.trim().to_string());
        }
    }
    value
}

fn boundary(content_type: &str) -> Option<String> {
    let start = content_type.find("boundary=")? + "boundary=".len();
    let rest = &content_type[start..];
    Some(rest.trim_matches('"').split(['"', ';']).next()?.to_string())
}

fn decode_body(headers: &str, body: &str) -> String {
    let body = body.trim_end_matches(['\n', '-']).trim_end();
    match header_in(headers, "Content-Transfer-Encoding").map(|e| e.to_ascii_lowercase()) {
        Some(e) if e == "quoted-printable" => quoted_printable(body),
        Some(e) if e == "base64" => {
            String::from_utf8_lossy(&base64(&body.split_whitespace().collect::<String>()))
                .into_owned()
        }
        _ => body.to_string(),
    }
}

fn quoted_printable(text: &str) -> String {
    let joined = text.replace("=\n", "");
    let raw = joined.as_bytes();
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = raw
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (raw[i], hex) {
            (b'=', Some(b)) => {
                bytes.push(b);
                i += 3;
            }
            (c, _) => {
                bytes.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn base64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|c| *c != b'=') {
        let Some(v) = ALPHABET.iter().position(|a| *a == c) else {
            continue;
        };
        buffer = (buffer << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?...?=` and `=?utf-8?q?...?=`); whitespace
/// between two encoded words is dropped, as the RFC says.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let Some(end) = rest[start + 2..].find("?=").map(|e| start + 2 + e) else {
            break;
        };
        let between = &rest[..start];
        if !(after_word && between.trim().is_empty()) {
            out.push_str(between);
        }
        let mut parts = rest[start + 2..end].splitn(3, '?');
        let (_charset, encoding, text) = (parts.next(), parts.next(), parts.next().unwrap_or(""));
        match encoding.map(|e| e.to_ascii_lowercase()).as_deref() {
            Some("b") => out.push_str(&String::from_utf8_lossy(&base64(text))),
            Some("q") => out.push_str(&quoted_printable(&text.replace('_', " "))),
            _ => out.push_str(&rest[start..end + 2]),
        }
        rest = &rest[end + 2..];
        after_word = true;
    }
    out.push_str(rest);
    out
}
