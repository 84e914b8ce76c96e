#![allow(dead_code)]
//! An SMTP server on 127.0.0.1 whose every stage a test can set: the password AUTH PLAIN
//! accepts (535 5.7.8 otherwise), a reply to MAIL, how long it stays silent before its 354 to
//! DATA and before its final reply. It speaks the protocol line by line (RFC 5321: EHLO, AUTH
//! PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT), one thread per connection, and records each
//! message it accepted and each AUTH it was sent.

use std::io::{BufRead, BufReader, Write};
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

fn session(conn: TcpStream, script: &Mutex<Script>, seen: &Mutex<Seen>) -> std::io::Result<()> {
    let current = || script.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut out = conn.try_clone()?;
    let mut lines = BufReader::new(conn);
    let mut say = |text: &str| out.write_all(format!("{text}\r\n").as_bytes());
    say("220 scripted.test ESMTP")?;
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_string();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" | "HELO" => {
                if current().login.is_some() {
                    say("250-scripted.test\r\n250-8BITMIME\r\n250 AUTH PLAIN")?;
                } else {
                    say("250-scripted.test\r\n250 8BITMIME")?;
                }
            }
            "AUTH" => {
                seen.lock().unwrap_or_else(|e| e.into_inner()).auth_attempts += 1;
                let given = command.split_whitespace().nth(2).unwrap_or("");
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(given)
                    .unwrap_or_default();
                let ok = current().login.is_some_and(|(user, password)| {
                    decoded == format!("\0{user}\0{password}").into_bytes()
                });
                if ok {
                    say("235 2.7.0 Authentication successful")?;
                } else {
                    say("535 5.7.8 Authentication credentials invalid")?;
                }
            }
            "MAIL" => match current().mail_reply {
                Some(reply) => say(&reply)?,
                None => say("250 2.1.0 Ok")?,
            },
            "RCPT" => say("250 2.1.5 Ok")?,
            "DATA" => {
                std::thread::sleep(current().before_354);
                say("354 End data with <CR><LF>.<CR><LF>")?;
                let mut message = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line)? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    message.push_str(&line);
                }
                seen.lock().unwrap_or_else(|e| e.into_inner()).received += 1;
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
                seen.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .accepted
                    .push(Accepted {
                        message_id,
                        at: Instant::now(),
                    });
                say("250 2.0.0 Ok: queued")?;
            }
            "RSET" | "NOOP" => say("250 2.0.0 Ok")?,
            "QUIT" => {
                say("221 2.0.0 Bye")?;
                return Ok(());
            }
            _ => say("502 5.5.2 command not recognized")?,
        }
    }
}
