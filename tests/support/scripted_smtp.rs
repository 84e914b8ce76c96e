#![allow(dead_code)]
//! An SMTP server on 127.0.0.1 whose every stage a test can set: the password AUTH PLAIN
//! accepts (535 5.7.8 otherwise), a reply to MAIL, how long it stays silent before its 354 to
//! DATA and before its final reply, TLS (STARTTLS or from the first byte, with a certificate
//! the test made), PIPELINING, a TLS alert in mid-session. It speaks the protocol line by line
//! (RFC 5321: EHLO, STARTTLS, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT), one thread per
//! connection, and records each message it accepted and every command it read, saying whether
//! it came encrypted.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;

/// What the server does; a test may change it while the server runs.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// `(username, password)` AUTH PLAIN accepts; None: AUTH is not offered.
    pub login: Option<(String, String)>,
    /// The reply to MAIL FROM, instead of 250 (e.g. "553 5.7.1 sender not allowed").
    pub mail_reply: Option<String>,
    /// Silence before the 354 to DATA.
    pub before_354: Duration,
    /// Silence before the final reply to the message.
    pub before_250: Duration,
    /// TLS; None: plaintext only (STARTTLS is not offered).
    pub tls: Option<ServerTls>,
    /// Whether PIPELINING is offered (RFC 2920).
    pub pipelining: bool,
    /// At MAIL on an encrypted connection: a fatal TLS alert, and the connection closes.
    pub alert_at_mail: bool,
}

/// The TLS the server speaks.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// Its certificate and key.
    pub config: Arc<rustls::ServerConfig>,
    /// TLS from the first byte (SMTPS), rather than STARTTLS.
    pub implicit: bool,
}

/// A command the server read.
#[derive(Debug, Clone)]
pub struct Command {
    /// Whether it came over TLS.
    pub encrypted: bool,
    /// The line, as sent.
    pub line: String,
}

/// A message the server accepted.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// Its Message-ID header.
    pub message_id: String,
    /// When its final 250 was written.
    pub at: Instant,
}

#[derive(Default)]
struct Seen {
    accepted: Vec<Accepted>,
    /// Messages read to their final dot, whether or not their reply went yet.
    received: usize,
    auth_attempts: usize,
    commands: Vec<Command>,
    connections: usize,
    /// MAIL commands read with more of the client's commands already behind them.
    pipelined: usize,
}

/// The running server; it lives until the test process ends.
pub struct ScriptedSmtp {
    port: u16,
    script: Arc<Mutex<Script>>,
    seen: Arc<Mutex<Seen>>,
}

impl ScriptedSmtp {
    /// Starts the server with `script`.
    pub fn start(script: Script) -> ScriptedSmtp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        let script = Arc::new(Mutex::new(script));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (s, n) = (script.clone(), seen.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (s, n) = (s.clone(), n.clone());
                std::thread::spawn(move || {
                    let _ = session(conn, &s, &n);
                });
            }
        });
        ScriptedSmtp { port, script, seen }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Changes what the server does from now on.
    pub fn script(&self, change: impl FnOnce(&mut Script)) {
        change(&mut self.script.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Messages accepted so far, in order.
    pub fn accepted(&self) -> Vec<Accepted> {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .accepted
            .clone()
    }

    /// Messages read to their final dot so far, their final reply given or not.
    pub fn received(&self) -> usize {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).received
    }

    /// AUTH commands received so far.
    pub fn auth_attempts(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .auth_attempts
    }

    /// Every command read so far, in order.
    pub fn commands(&self) -> Vec<Command> {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .commands
            .clone()
    }

    /// Connections made so far.
    pub fn connections(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .connections
    }

    /// MAIL commands that came with the next commands behind them (pipelined).
    pub fn pipelined(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pipelined
    }

    /// Waits until `n` messages were accepted, or `deadline` passed.
    pub fn wait_for(&self, n: usize, deadline: Duration) -> Vec<Accepted> {
        let until = Instant::now() + deadline;
        loop {
            let got = self.accepted();
            if got.len() >= n || Instant::now() >= until {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A connection the server reads and writes: plain TCP, or TLS over it.
trait Wire: Read + Write {
    /// Writes a fatal TLS alert (internal_error) under the session and closes it.
    fn alert(&mut self) -> std::io::Result<()>;
}

impl Wire for TcpStream {
    fn alert(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

type Tls = rustls::StreamOwned<rustls::ServerConnection, TcpStream>;

impl Wire for Tls {
    fn alert(&mut self) -> std::io::Result<()> {
        self.sock
            .write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x50])?;
        self.sock.shutdown(std::net::Shutdown::Both)
    }
}

fn tls(config: Arc<rustls::ServerConfig>, tcp: TcpStream) -> std::io::Result<Tls> {
    let conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    Ok(rustls::StreamOwned::new(conn, tcp))
}

/// What the conversation asks for when it ends.
enum Next {
    Close,
    StartTls(Arc<rustls::ServerConfig>),
}

fn session(tcp: TcpStream, script: &Mutex<Script>, seen: &Mutex<Seen>) -> std::io::Result<()> {
    seen.lock().unwrap_or_else(|e| e.into_inner()).connections += 1;
    let setting = script.lock().unwrap_or_else(|e| e.into_inner()).tls.clone();
    if let Some(ServerTls {
        config,
        implicit: true,
    }) = setting
    {
        let mut lines = BufReader::new(tls(config, tcp)?);
        say(&mut lines, "220 scripted.test ESMTP")?;
        return converse(&mut lines, true, script, seen).map(drop);
    }
    let mut lines = BufReader::new(tcp);
    say(&mut lines, "220 scripted.test ESMTP")?;
    if let Next::StartTls(config) = converse(&mut lines, false, script, seen)? {
        // Whatever the client wrote behind STARTTLS is dropped, as RFC 3207 asks.
        let mut lines = BufReader::new(tls(config, lines.into_inner())?);
        converse(&mut lines, true, script, seen)?;
    }
    Ok(())
}

fn say<S: Wire>(lines: &mut BufReader<S>, text: &str) -> std::io::Result<()> {
    let out = lines.get_mut();
    out.write_all(format!("{text}\r\n").as_bytes())?;
    out.flush()
}

fn converse<S: Wire>(
    lines: &mut BufReader<S>,
    encrypted: bool,
    script: &Mutex<Script>,
    seen: &Mutex<Seen>,
) -> std::io::Result<Next> {
    let current = || script.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let seen = || seen.lock().unwrap_or_else(|e| e.into_inner());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            return Ok(Next::Close);
        }
        let command = line.trim_end().to_string();
        seen().commands.push(Command {
            encrypted,
            line: command.clone(),
        });
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let script = current();
        match verb.as_str() {
            "EHLO" | "HELO" => {
                let mut keywords = vec!["scripted.test", "8BITMIME"];
                if script.pipelining {
                    keywords.push("PIPELINING");
                }
                if script.tls.as_ref().is_some_and(|t| !t.implicit) && !encrypted {
                    keywords.push("STARTTLS");
                }
                if script.login.is_some() {
                    keywords.push("AUTH PLAIN");
                }
                let last = keywords.len() - 1;
                let reply: Vec<String> = keywords
                    .iter()
                    .enumerate()
                    .map(|(i, k)| format!("250{}{k}", if i == last { ' ' } else { '-' }))
                    .collect();
                say(lines, &reply.join("\r\n"))?;
            }
            "STARTTLS" => match script.tls.filter(|t| !t.implicit && !encrypted) {
                Some(tls) => {
                    say(lines, "220 2.0.0 Ready to start TLS")?;
                    return Ok(Next::StartTls(tls.config));
                }
                None => say(lines, "454 4.7.0 TLS not available")?,
            },
            "AUTH" => {
                seen().auth_attempts += 1;
                let given = command.split_whitespace().nth(2).unwrap_or("");
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(given)
                    .unwrap_or_default();
                let ok = script.login.is_some_and(|(user, password)| {
                    decoded == format!("\0{user}\0{password}").into_bytes()
                });
                if ok {
                    say(lines, "235 2.7.0 Authentication successful")?;
                } else {
                    say(lines, "535 5.7.8 Authentication credentials invalid")?;
                }
            }
            "MAIL" if encrypted && script.alert_at_mail => {
                lines.get_mut().alert()?;
                return Ok(Next::Close);
            }
            "MAIL" => {
                if !lines.buffer().is_empty() {
                    seen().pipelined += 1;
                }
                match script.mail_reply {
                    Some(reply) => say(lines, &reply)?,
                    None => say(lines, "250 2.1.0 Ok")?,
                }
            }
            "RCPT" => say(lines, "250 2.1.5 Ok")?,
            "DATA" => {
                std::thread::sleep(script.before_354);
                say(lines, "354 End data with <CR><LF>.<CR><LF>")?;
                let mut message = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line)? == 0 {
                        return Ok(Next::Close);
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    message.push_str(&line);
                }
                seen().received += 1;
                std::thread::sleep(current().before_250);
                let message_id = message
                    .lines()
                    .find_map(|l| {
                        l.split_once(':')
                            .filter(|(n, _)| n.eq_ignore_ascii_case("Message-ID"))
                            .map(|(_, v)| v.trim().to_string())
                    })
                    .unwrap_or_default();
                // Kept before the reply goes, as a real server commits before it answers.
                seen().accepted.push(Accepted {
                    message_id,
                    at: Instant::now(),
                });
                say(lines, "250 2.0.0 Ok: queued")?;
            }
            "RSET" | "NOOP" => say(lines, "250 2.0.0 Ok")?,
            "QUIT" => {
                say(lines, "221 2.0.0 Bye")?;
                return Ok(Next::Close);
            }
            _ => say(lines, "502 5.5.2 command not recognized")?,
        }
    }
}
