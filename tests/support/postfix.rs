#![allow(dead_code)]
//! A real Postfix (Debian's `postfix`), private to one test: its own configuration, queue and
//! maildir in a temp dir, listening on 127.0.0.1 and a free port. It relays mail for
//! `customer.example` to a test SMTP server (whose refusals it turns into its own delivery
//! status notifications) and delivers mail for `bounces@bakery.example` (and
//! `bounces+anything@`: `recipient_delimiter = +`) into a maildir. So a bounce in a test is
//! one Postfix wrote, sent back by the note's own return path.
//!
//! Postfix's daemons run as Debian's `postfix` user: the test must run as root (CI does).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The running Postfix.
pub struct Postfix {
    dir: tempfile::TempDir,
    port: u16,
    master: Child,
}

/// The services one instance needs, none chrooted (the queue is in a temp dir).
const MASTER_CF: &str = "\
{listen} inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
local unix - n n - - local
virtual unix - n n - - virtual
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
";

impl Postfix {
    /// Starts one that relays `customer.example` to 127.0.0.1:`relay_port`. Panics, saying how
    /// to install it, when Postfix is missing or the test does not run as root.
    pub fn start(relay_port: u16) -> Postfix {
        assert!(
            Path::new("/usr/sbin/postfix").exists(),
            "postfix is missing: install Debian's postfix (.ci/run does: `echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections; apt-get install -y postfix`)"
        );
        let uid = Command::new("id").arg("-u").output().expect("id -u");
        assert_eq!(
            String::from_utf8_lossy(&uid.stdout).trim(),
            "0",
            "the Postfix test runs Postfix's daemons as the postfix user: run the tests as root (CI does)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let port = super::ports::free_port();
        let root = dir.path();
        for sub in ["conf", "queue", "data", "mail"] {
            std::fs::create_dir_all(root.join(sub)).expect("postfix dirs");
        }
        chmod(root, "755");
        chmod(&root.join("mail"), "777");
        run(
            "chown",
            &["postfix", &root.join("data").display().to_string()],
        );
        let listen = format!("127.0.0.1:{port}");
        std::fs::write(
            root.join("conf/master.cf"),
            MASTER_CF.replace("{listen}", &listen),
        )
        .expect("master.cf");
        std::fs::write(root.join("conf/main.cf"), main_cf(root, relay_port)).expect("main.cf");
        let config = root.join("conf");
        let status = Command::new("postfix")
            .arg("set-permissions")
            .env("MAIL_CONFIG", &config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("postfix set-permissions");
        assert!(status.success(), "postfix set-permissions failed");
        let log = std::fs::File::create(root.join("postfix.log")).expect("log");
        let master = Command::new("postfix")
            .arg("start-fg")
            .env("MAIL_CONFIG", &config)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("postfix start-fg");
        let postfix = Postfix { dir, port, master };
        postfix.wait_until_listening();
        postfix
    }

    /// The SMTP port (plaintext, 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The maildir `bounces@bakery.example` is delivered into.
    pub fn bounces(&self) -> PathBuf {
        self.dir.path().join("mail/bounces")
    }

    /// What Postfix logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postfix.log")).unwrap_or_default()
    }

    /// Waits (at most 20 s) for `n` messages in the bounces maildir's `new/`; their contents.
    pub fn wait_for_bounces(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let files: Vec<PathBuf> = std::fs::read_dir(self.bounces().join("new"))
                .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
                .unwrap_or_default();
            if files.len() >= n {
                return files
                    .iter()
                    .map(|p| std::fs::read_to_string(p).expect("read bounce"))
                    .collect();
            }
            assert!(
                Instant::now() < deadline,
                "no bounce from Postfix within 20 s; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_until_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "Postfix did not listen within 20 s; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix")
            .arg("stop")
            .env("MAIL_CONFIG", self.dir.path().join("conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.master.kill();
        let _ = self.master.wait();
    }
}

/// The instance's main.cf: everything under `root`, nothing from /etc/postfix but its
/// programs' locations.
fn main_cf(root: &Path, relay_port: u16) -> String {
    let root = root.display();
    format!(
        "compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mail.bakery.example
mydomain = bakery.example
myorigin = bakery.example
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = customer.example
transport_maps = inline:{{ {{customer.example = smtp:[127.0.0.1]:{relay_port}}} }}
virtual_mailbox_domains = bakery.example
virtual_mailbox_base = {root}/mail
virtual_mailbox_maps = inline:{{ bounces@bakery.example=bounces/ }}
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
recipient_delimiter = +
smtputf8_enable = no
maillog_file = /dev/stdout
alias_maps =
alias_database =
smtpd_tls_security_level = none
smtp_tls_security_level = none
biff = no
"
    )
}

fn chmod(path: &Path, mode: &str) {
    run("chmod", &[mode, &path.display().to_string()]);
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program).args(args).status().expect(program);
    assert!(status.success(), "{program} {args:?} failed");
}
