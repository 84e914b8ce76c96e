#![allow(dead_code)]
//! A real IMAP server for the inbound tests: Debian's Dovecot 2.3 in the foreground, with
//! everything (configuration, sockets, state, log, mail) under a temp dir of its own, on
//! 127.0.0.1 and free ports, and one user (`owner`, password `secret`) whose mail is a maildir.
//! The helpers speak IMAP through a small synchronous client of their own, so that what a test
//! checks never goes through rekindle's IMAP code. As root (CI) Dovecot's processes run as
//! Debian's `dovecot` user, since Dovecot refuses mail access as root; as anyone else they run
//! as that user, and nothing is chrooted (only root may chroot).

use std::fmt::Display;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use std::{env, fs, thread};

use tempfile::TempDir;

const USER: &str = "owner";
const PASSWORD: &str = "secret";
/// How long Dovecot may take to greet, to answer a command, or to stop.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Dovecot 2.3's capabilities after login less IDLE (`imap_capability` replaces the list).
const WITHOUT_IDLE: &str = concat!(
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE SORT SORT=DISPLAY THREAD=REFERENCES ",
    "THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN ",
    "NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES ",
    "WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW ",
    "STATUS=SIZE SAVEDATE LITERAL+ NOTIFY"
);
/// The services Dovecot chroots by default, which fails unless it runs as root.
const CHROOTED: &str = "anvil ipc old-stats imap-login imap-urlauth-login";

/// A throw-away Dovecot; dropping it kills it and removes its temp dir.
pub struct Dovecot {
    dir: TempDir,
    maildir: PathBuf,
    child: Option<Child>,
    port: u16,
    tls_port: Option<u16>,
}

impl Dovecot {
    /// Starts a throw-away Dovecot on 127.0.0.1 and a free port, plaintext only, one user
    /// (`owner`, password `secret`) with a maildir under the temp dir, folders INBOX plus any
    /// created later. Panics (it is a test) if Dovecot is missing or does not come up.
    pub fn start() -> Dovecot {
        Dovecot::launch(None, true)
    }

    /// Like [`Dovecot::start`], with TLS required (`ssl = required`): the plain port offers
    /// STARTTLS, and a second port speaks implicit TLS ([`Dovecot::tls_port`]). Dovecot counts
    /// 127.0.0.1 as secure, so plaintext logins there (the harness's own) still work.
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Dovecot {
        Dovecot::launch(Some((cert_pem, key_pem)), true)
    }

    /// Like [`Dovecot::start`], with IDLE left out of the capabilities, before and after login
    /// (Dovecot still accepts the command): for a client's polling fallback.
    pub fn start_without_idle() -> Dovecot {
        Dovecot::launch(None, false)
    }

    /// The plain IMAP port (offering STARTTLS in TLS mode).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The implicit-TLS (imaps) port, in TLS mode.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// The IMAP user name.
    pub fn user(&self) -> &str {
        USER
    }

    /// The user's password.
    pub fn password(&self) -> &str {
        PASSWORD
    }

    /// The user's maildir root: INBOX's cur/new/tmp, and a `.Name` maildir per other folder.
    pub fn maildir(&self) -> &Path {
        &self.maildir
    }

    /// Dovecot's log so far, e.g. to see what a client did.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// IMAP APPEND of a raw message to `folder` (created if missing), with flags, e.g. `&[]`
    /// (unread) or `&["\\Seen"]`; returns the UID (from APPENDUID).
    pub fn append(&self, folder: &str, raw: &[u8], flags: &[&str]) -> u32 {
        let mut session = self.session();
        match session.run(&format!("CREATE {}", quote(folder))) {
            Err(e) if !e.contains("[ALREADYEXISTS]") => self.fail(e),
            _ => {}
        }
        // An empty flag list, "()", is valid IMAP: the message is unread.
        let (folder, flags) = (quote(folder), flags.join(" "));
        let command = format!("APPEND {folder} ({flags}) {{{}}}", raw.len());
        let status = self.ok(session.run_with(&command, Some(raw))).status;
        let uid = match status.split(' ').collect::<Vec<_>>()[..] {
            ["OK", "[APPENDUID", _uidvalidity, uid, ..] => number(uid),
            _ => None,
        };
        uid.unwrap_or_else(|| self.fail(format!("no APPENDUID: {status}")))
    }

    /// The flags of message `uid` in `folder` (e.g. `["\\Seen"]`), read with FETCH (FLAGS) after
    /// EXAMINE (read-only, so looking does not change them). `\Recent` is left out: it belongs
    /// to a session, not to the message.
    pub fn flags(&self, folder: &str, uid: u32) -> Vec<String> {
        let (mut session, _) = self.examine(folder);
        let reply = self.ok(session.run(&format!("UID FETCH {uid} (FLAGS)")));
        let flags = reply.lines("* ").find_map(|line| fetched_flags(line, uid));
        flags.unwrap_or_else(|| self.fail(format!("no message with UID {uid} in {folder}")))
    }

    /// The UIDs in `folder` (EXAMINE + UID SEARCH ALL); empty if the folder does not exist.
    pub fn uids(&self, folder: &str) -> Vec<u32> {
        let mut session = self.session();
        // Dovecot says "NO Mailbox doesn't exist: X" here, without a [NONEXISTENT] code.
        match session.run(&format!("EXAMINE {}", quote(folder))) {
            Err(e) if e.contains("doesn't exist") || e.contains("[NONEXISTENT]") => return vec![],
            examined => self.ok(examined),
        };
        let reply = self.ok(session.run("UID SEARCH ALL"));
        let numbers = reply.lines("* SEARCH").flat_map(str::split_whitespace);
        numbers.filter_map(number).collect()
    }

    /// Folder names (LIST "" "*"), e.g. `["Bounces", "INBOX"]`; the hierarchy delimiter is ".".
    pub fn folders(&self) -> Vec<String> {
        let reply = self.ok(self.session().run("LIST \"\" \"*\""));
        reply.lines("* LIST (").filter_map(listed_name).collect()
    }

    /// UIDVALIDITY of a folder (from EXAMINE).
    pub fn uidvalidity(&self, folder: &str) -> u32 {
        let (_, reply) = self.examine(folder);
        let found = reply.lines("* OK [UIDVALIDITY ").find_map(number);
        found.unwrap_or_else(|| self.fail(format!("no UIDVALIDITY for {folder}")))
    }

    /// The capabilities after login (CAPABILITY).
    pub fn capabilities(&self) -> Vec<String> {
        let reply = self.ok(self.session().run("CAPABILITY"));
        let words = reply.lines("* CAPABILITY ").flat_map(str::split_whitespace);
        words.map(String::from).collect()
    }

    /// Recreates a folder, empty and with a new UIDVALIDITY: DELETE + CREATE. INBOX, which IMAP
    /// cannot delete, has its messages expunged and gets a new UIDVALIDITY from doveadm. A
    /// client that has the folder selected meanwhile gets `* BYE` (INBOX) or `* NO` (others).
    pub fn recreate(&self, folder: &str) {
        if folder.eq_ignore_ascii_case("INBOX") {
            return self.renew_inbox();
        }
        let mut session = self.session();
        self.ok(session.run(&format!("DELETE {}", quote(folder))));
        self.ok(session.run(&format!("CREATE {}", quote(folder))));
    }

    /// Stops the server (SIGTERM, then waits: connected clients get `* BYE` at once), keeping
    /// its ports and mail for [`Dovecot::restart`]; until then connections are refused.
    pub fn stop(&mut self) {
        self.halt();
    }

    /// Stops the server if it runs and starts it again on the same ports and mail.
    pub fn restart(&mut self) {
        self.halt();
        let started = self.spawn();
        self.ok(started);
    }

    fn renew_inbox(&self) {
        let next = (self.uidvalidity("INBOX") + 1).to_string();
        if !self.uids("INBOX").is_empty() {
            let mut session = self.session();
            self.ok(session.run("SELECT INBOX"));
            self.ok(session.run("STORE 1:* +FLAGS.SILENT (\\Deleted)"));
            self.ok(session.run("EXPUNGE"));
        }
        let conf = self.conf();
        // CONFIG_FILE as well as -c: else doveadm first asks a system Dovecot's /run/dovecot.
        let mut doveadm = Command::new(binary("doveadm"));
        doveadm.env("CONFIG_FILE", &conf).arg("-c").arg(&conf);
        doveadm.args(["mailbox", "update", "-u", USER]);
        let out = doveadm.args(["--uid-validity", &next, "INBOX"]).output();
        let out = out.expect("running doveadm");
        if !out.status.success() {
            self.fail(format!("doveadm: {}", String::from_utf8_lossy(&out.stderr)));
        }
    }

    fn launch(tls: Option<(&str, &str)>, idle: bool) -> Dovecot {
        let who = Account::running();
        let dir = prepare(&who, tls);
        let maildir = dir.path().join("mail").join(USER);
        let (child, port, tls_port) = (None, 0, None);
        let mut server = Dovecot {
            dir,
            maildir,
            child,
            port,
            tls_port,
        };
        // A port found free may be taken before Dovecot binds it (tests run in parallel).
        for attempt in 1..=3 {
            let ports = super::ports::free_ports(if tls.is_some() { 2 } else { 1 });
            (server.port, server.tls_port) = (ports[0], ports.get(1).copied());
            let config = server.config(&who, tls.is_some(), idle);
            fs::write(server.conf(), config).expect("writing dovecot.conf");
            match server.spawn() {
                Ok(()) => return server,
                Err(_) if attempt < 3 && server.log().contains("Address already in use") => {}
                Err(e) => server.fail(e),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// Everything under the temp dir, nothing shared with another instance or with a system
    /// Dovecot: /etc/dovecot is not read, /run/dovecot and /var/lib/dovecot are not touched.
    fn config(&self, who: &Account, tls: bool, idle: bool) -> String {
        let d = self.dir.path().display();
        let ssl = match tls {
            true => format!("ssl = required\nssl_cert = <{d}/cert.pem\nssl_key = <{d}/key.pem"),
            false => "ssl = no".to_string(),
        };
        let capability = if idle { "" } else { WITHOUT_IDLE };
        let capability = format!("imap_capability = {capability}");
        let unchroot = |s| format!("service {s} {{\n  chroot =\n}}\n");
        let unchrooted: String = CHROOTED.split(' ').map(unchroot).collect();
        let (user, group, uid, gid) = (&who.user, &who.group, who.uid, who.gid);
        let (port, tls_port) = (self.port, self.tls_port.unwrap_or(0));
        let mark = self.mark();
        format!(
            "base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
login_greeting = Dovecot ready ({mark})
{ssl}
{capability}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {user}
default_internal_user = {user}
default_internal_group = {group}
first_valid_uid = {uid}
passdb {{
  driver = passwd-file
  args = {d}/passwd
}}
userdb {{
  driver = passwd-file
  args = {d}/passwd
  default_fields = uid={uid} gid={gid} home={d}/home/%u mail=maildir:{d}/mail/%u
}}
{unchrooted}service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {tls_port}
  }}
}}
"
        )
    }

    /// Starts `dovecot -F` and waits until it greets.
    fn spawn(&mut self) -> Result<(), String> {
        // Errors before the log is open (in the configuration, say) go to stderr.
        let stderr = fs::File::create(self.dir.path().join("stderr.log")).expect("stderr.log");
        let mut dovecot = Command::new(binary("dovecot"));
        dovecot.args(["-F", "-c"]).arg(self.conf());
        dovecot.stdin(Stdio::null()).stdout(Stdio::null());
        let child = dovecot.stderr(stderr).spawn();
        self.child = Some(child.map_err(|e| format!("could not run dovecot: {e}"))?);
        let ready = self.wait_ready();
        if ready.is_err() {
            self.halt();
        }
        ready
    }

    /// Polls the plain port until it greets with `* OK`, the child exits, or [`TIMEOUT`].
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                return Err(format!("dovecot exited ({status}) before greeting"));
            }
            if greets(self.port, &self.mark()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("no greeting on port {} in 10 s", self.port));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM to the master and to its children at once. The master alone would stop the
    /// processes of connected clients only once these were idle for 10 s, and then sleep 1 s
    /// more; told directly, each says `* BYE` and exits, and all is over in some 20 ms.
    fn halt(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        terminate(&child);
        let deadline = Instant::now() + TIMEOUT;
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// What this instance's greeting says, so that a greeting from a server that took its port
    /// (another test's, while this one failed to bind it) is not taken for its own.
    fn mark(&self) -> String {
        let name = self.dir.path().file_name().unwrap_or_default();
        format!("test {}", name.to_string_lossy())
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("dovecot.conf")
    }

    /// A logged-in session with `folder` opened read-only, and EXAMINE's reply.
    fn examine(&self, folder: &str) -> (Session, Reply) {
        let mut session = self.session();
        let reply = self.ok(session.run(&format!("EXAMINE {}", quote(folder))));
        (session, reply)
    }

    fn session(&self) -> Session {
        self.ok(Session::login(self.port, &self.mark()))
    }

    fn ok<T>(&self, result: Result<T, String>) -> T {
        result.unwrap_or_else(|e| self.fail(e))
    }

    /// Panics with `what`, Dovecot's stderr and the tail of its log.
    fn fail(&self, what: impl Display) -> ! {
        let stderr = fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default();
        let log = self.log();
        let tail = log.lines().skip(log.lines().count().saturating_sub(30));
        let tail = tail.collect::<Vec<_>>().join("\n");
        panic!("dovecot: {what}\n--- stderr ---\n{stderr}--- dovecot.log (tail) ---\n{tail}")
    }
}

impl Drop for Dovecot {
    /// Stops Dovecot as [`Dovecot::stop`] does; the temp dir goes after.
    fn drop(&mut self) {
        self.halt();
    }
}

/// SIGTERM to the master and its children (all of Dovecot's processes are), through sh's
/// `kill`: std sends no signal but SIGKILL, and no libc crate is needed for one.
fn terminate(master: &Child) {
    let pid = master.id();
    let children = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"));
    let children = children.unwrap_or_default();
    let kill = format!("kill -TERM {pid} {children} 2>/dev/null");
    let _ = Command::new("sh").arg("-c").arg(kill).status();
}

/// The account Dovecot's processes run as.
struct Account {
    user: String,
    group: String,
    uid: u32,
    gid: u32,
}

impl Account {
    /// Debian's `dovecot` user as root (Dovecot refuses mail access as root), else ourselves.
    fn running() -> Account {
        let name = (id("-u", None) == "0").then_some("dovecot");
        let number = |flag| id(flag, name).parse().expect("a numeric id");
        let (uid, gid) = (number("-u"), number("-g"));
        // Names, not numbers: Dovecot looks the user and the group up itself.
        let (user, group) = (id("-un", name), id("-gn", name));
        Account {
            user,
            group,
            uid,
            gid,
        }
    }
}

/// What `id FLAG [USER]` says (with NSS, so any user database works).
fn id(flag: &str, user: Option<&str>) -> String {
    let out = Command::new("id").arg(flag).args(user).output();
    let out = out.expect("running id");
    if !out.status.success() {
        missing(); // only Debian's dovecot user can be missing
    }
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A Dovecot program, from PATH or Debian's /usr/sbin (not in a normal user's PATH).
fn binary(name: &str) -> PathBuf {
    let path = env::var_os("PATH").unwrap_or_default();
    let dirs = env::split_paths(&path).chain(["/usr/sbin".into(), "/usr/bin".into()]);
    let mut found = dirs.map(|d| d.join(name)).filter(|p| p.is_file());
    found.next().unwrap_or_else(|| missing())
}

/// Tests that need Dovecot fail without it, never skip.
fn missing() -> ! {
    let how = match env::var_os("CI") {
        Some(_) => ".ci/run does",
        None => "apt-get install -y dovecot-imapd",
    };
    panic!("dovecot is missing: install Debian's dovecot-imapd ({how})")
}

/// The temp dir: the password file, the certificate, the home and mail owned by `who`.
fn prepare(who: &Account, tls: Option<(&str, &str)>) -> TempDir {
    binary("dovecot");
    let dir = tempfile::Builder::new().prefix("dovecot-").tempdir();
    let dir = dir.expect("creating a temp dir");
    let root = dir.path();
    // Dovecot's processes may run as another user (under root): they must get in.
    fs::set_permissions(root, fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
    for sub in ["run", "state", "home/owner", "mail/owner"] {
        fs::create_dir_all(root.join(sub)).expect("creating the temp dir's folders");
    }
    for sub in ["home", "home/owner", "mail", "mail/owner"] {
        std::os::unix::fs::chown(root.join(sub), Some(who.uid), Some(who.gid)).expect("chown");
    }
    let passwd = format!("{USER}:{{PLAIN}}{PASSWORD}::::::\n");
    fs::write(root.join("passwd"), passwd).expect("writing passwd");
    if let Some((cert, key)) = tls {
        fs::write(root.join("cert.pem"), cert).expect("writing cert.pem");
        fs::write(root.join("key.pem"), key).expect("writing key.pem");
    }
    dir
}

/// Whether 127.0.0.1:`port` accepts a connection and greets with `* OK` and `mark`.
fn greets(port: u16, mark: &str) -> bool {
    let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut greeting = String::new();
    let read = BufReader::new(stream).read_line(&mut greeting).is_ok();
    read && greeting.starts_with("* OK") && greeting.contains(mark)
}

/// A completed command: its untagged lines, and the tagged line after the tag.
struct Reply {
    untagged: Vec<String>,
    status: String,
}

impl Reply {
    /// The untagged lines that start with `prefix`, without it.
    fn lines<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> {
        self.untagged
            .iter()
            .filter_map(move |l| l.strip_prefix(prefix))
    }
}

/// A logged-in IMAP connection of the harness's own: one command at a time, each tagged.
struct Session {
    reader: BufReader<TcpStream>,
    tags: u32,
}

impl Session {
    fn login(port: u16, mark: &str) -> Result<Session, String> {
        let connected = TcpStream::connect(("127.0.0.1", port));
        let stream = connected.map_err(|e| format!("connecting to port {port}: {e}"))?;
        stream
            .set_read_timeout(Some(TIMEOUT))
            .map_err(|e| e.to_string())?;
        let reader = BufReader::new(stream);
        let mut session = Session { reader, tags: 0 };
        let greeting = session.line()?;
        if !greeting.starts_with("* OK") || !greeting.contains(mark) {
            return Err(format!("not this test's dovecot: {greeting}"));
        }
        session.run(&format!("LOGIN {} {}", quote(USER), quote(PASSWORD)))?;
        Ok(session)
    }

    fn run(&mut self, command: &str) -> Result<Reply, String> {
        self.run_with(command, None)
    }

    /// One command, with a synchronising literal (sent after the server's `+`) if given. NO
    /// or BAD is an error quoting the command and the answer.
    fn run_with(&mut self, command: &str, literal: Option<&[u8]>) -> Result<Reply, String> {
        self.tags += 1;
        let tag = format!("h{} ", self.tags);
        self.write(format!("{tag}{command}\r\n").as_bytes())?;
        if let Some(literal) = literal {
            let go_ahead = self.line()?;
            if !go_ahead.starts_with('+') {
                return Err(format!("{command} -> {go_ahead}"));
            }
            self.write(&[literal, b"\r\n"].concat())?;
        }
        let mut untagged = Vec::new();
        loop {
            let line = self.line()?;
            let Some(status) = line.strip_prefix(&tag) else {
                untagged.push(line);
                continue;
            };
            if !status.starts_with("OK") {
                return Err(format!("{command} -> {status}"));
            }
            let status = status.to_string();
            return Ok(Reply { untagged, status });
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        let written = self.reader.get_mut().write_all(bytes);
        written.map_err(|e| format!("writing to dovecot: {e}"))
    }

    /// One response line without its CRLF. No literal comes back for the commands used here
    /// (Dovecot quotes folder names), so none is looked for.
    fn line(&mut self) -> Result<String, String> {
        let mut line = Vec::new();
        match self.reader.read_until(b'\n', &mut line) {
            Ok(0) => Err("dovecot closed the connection".to_string()),
            Ok(_) => Ok(String::from_utf8_lossy(&line).trim_end().to_string()),
            Err(e) => Err(format!("reading from dovecot: {e}")),
        }
    }
}

/// An IMAP quoted string.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The number at the start of `s`, as in `1796196162] UIDs valid`.
fn number(s: &str) -> Option<u32> {
    s.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// The first atom or quoted string of `s` (unquoted), and the rest.
fn token(s: &str) -> (String, &str) {
    let Some(quoted) = s.strip_prefix('"') else {
        let (atom, rest) = s.split_once(' ').unwrap_or((s, ""));
        return (atom.to_string(), rest);
    };
    let (mut out, mut chars) = (String::new(), quoted.char_indices());
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => out.extend(chars.next().map(|(_, c)| c)),
            '"' => return (out, quoted[i + 1..].trim_start()),
            c => out.push(c),
        }
    }
    (out, "")
}

/// The folder name in the rest of a `* LIST (flags) delimiter name` line.
fn listed_name(rest: &str) -> Option<String> {
    let (_flags, rest) = rest.split_once(") ")?;
    let (_delimiter, rest) = token(rest);
    Some(token(rest).0)
}

/// The flags in the rest of a `* n FETCH (UID uid FLAGS (...))` line, less `\Recent`.
fn fetched_flags(rest: &str, uid: u32) -> Option<Vec<String>> {
    let (_, items) = rest.split_once(" FETCH (")?;
    let words: Vec<&str> = items.split([' ', '(', ')']).collect();
    let uid = uid.to_string();
    words.windows(2).find(|w| w[0] == "UID" && w[1] == uid)?;
    let flags = items.split_once("FLAGS (")?.1.split(')').next()?;
    let flags = flags
        .split_whitespace()
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"));
    Some(flags.map(String::from).collect())
}
