//! Hostile and broken input: the classifier must answer, never panic, and stay quick.

use super::*;

/// Every fixture, for mutation.
const FIXTURES: [&[u8]; 23] = [
    fixture!("postfix-user-unknown"),
    fixture!("postfix-mailbox-full-4xx"),
    fixture!("postfix-delayed"),
    fixture!("exim-plain"),
    fixture!("exim-dsn"),
    fixture!("qmail"),
    fixture!("m365-not-found"),
    fixture!("gmail-no-such-user"),
    fixture!("gmail-domain-gone"),
    fixture!("verp-only"),
    fixture!("vacation-reply"),
    fixture!("outlook-auto-reply"),
    fixture!("vacation-from-mailer-daemon"),
    fixture!("arf-abuse"),
    fixture!("reply-plain"),
    fixture!("reply-html-outlook"),
    fixture!("reply-french"),
    fixture!("reply-unrelated-thread"),
    fixture!("unsubscribe-mailto"),
    fixture!("unsubscribe-subject"),
    fixture!("broken-mime"),
    fixture!("human-says-undeliverable"),
    fixture!("dsn-unknown-id"),
];

/// A small deterministic random number generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    /// The next pseudo-random number.
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A short reply to the note, for wrapping hostile content around.
fn reply_head(extra_headers: &str, content_type: &str) -> String {
    format!(
        "From: Ann <ann@customer.example>\r\nTo: hello@bakery.example\r\nIn-Reply-To: {NOTE}\r\n\
         Subject: Re: hi\r\n{extra_headers}MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n\r\n"
    )
}

#[test]
fn empty_and_blank_input() {
    assert_eq!(unrelated(b""), "an empty message");
    assert_eq!(unrelated(b" \r\n\t\n"), "an empty message");
    assert_eq!(
        classify(b"no header here at all", &bakery()).kind(),
        "unrelated"
    );
    assert_eq!(classify(b"\n\nbody only", &bakery()).kind(), "unrelated");
}

#[test]
fn random_bytes() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..300 {
        let len = rng.below(4096);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let _ = classify(&bytes, &bakery()).kind();
    }
}

#[test]
fn truncated_and_mangled_fixtures() {
    let mut rng = Rng(42);
    let alphabet: &[u8] = b"\r\n:;<>-=\"\\ \x00\xff\xc3@.+5";
    for raw in FIXTURES {
        for cut in (0..raw.len()).step_by(raw.len() / 20 + 1) {
            let _ = classify(raw.get(..cut).unwrap_or(raw), &bakery());
        }
        for _ in 0..20 {
            let mut bytes = raw.to_vec();
            for _ in 0..1 + rng.below(20) {
                let at = rng.below(bytes.len());
                bytes[at] = alphabet[rng.below(alphabet.len())];
            }
            let _ = classify(&bytes, &bakery());
        }
    }
}

#[test]
fn broken_structure_of_a_reply_still_reads() {
    let raw = replaced(
        fixture!("reply-plain"),
        "--000000000000f1e2d3c4b5a69788--",
        "",
    );
    assert_eq!(reply(&raw).refs, note_refs(false));
}

#[test]
fn one_megabyte_header() {
    let huge = format!("X-Junk: {}\r\n", "a".repeat(1 << 20));
    let raw = format!("{}Hello there.\r\n", reply_head(&huge, "text/plain"));
    assert_eq!(reply(raw.as_bytes()).excerpt, "Hello there.");
    let subject = format!(
        "From: a@b.example\r\nSubject: {}\r\n\r\nx\r\n",
        "Undeliverable ".repeat(80_000)
    );
    assert_eq!(classify(subject.as_bytes(), &bakery()).kind(), "unrelated");
    let references = format!("References: {}\r\n", format!("{NOTE} ").repeat(20_000));
    let raw = format!("{}Hi.\r\n", reply_head(&references, "text/plain"));
    assert_eq!(reply(raw.as_bytes()).refs, note_refs(false));
}

#[test]
fn ten_thousand_parts() {
    let mut raw = reply_head("", "multipart/mixed; boundary=\"p\"");
    for i in 0..10_000 {
        raw.push_str(&format!(
            "--p\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n"
        ));
    }
    raw.push_str("--p--\r\n");
    assert_eq!(reply(raw.as_bytes()).excerpt, "part 0");
}

#[test]
fn ten_thousand_parts_in_a_report() {
    let mut raw = String::from(
        "From: MAILER-DAEMON@mx.example\r\nSubject: Undelivered Mail Returned to Sender\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"p\"\r\n\r\n",
    );
    for _ in 0..10_000 {
        raw.push_str("--p\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\nAction: delayed\r\n");
    }
    raw.push_str("--p--\r\n");
    assert_eq!(unrelated(raw.as_bytes()), "a delay notice, not a bounce");
}

#[test]
fn deeply_nested_multiparts() {
    let depth = 3_000;
    let mut raw = reply_head("", "multipart/mixed; boundary=\"b0\"");
    for level in 1..depth {
        raw.push_str(&format!(
            "--b{}\r\nContent-Type: multipart/mixed; boundary=\"b{level}\"\r\n\r\n",
            level - 1
        ));
    }
    raw.push_str(&format!(
        "--b{}\r\nContent-Type: text/plain\r\n\r\ndeep\r\n",
        depth - 1
    ));
    for level in (0..depth).rev() {
        raw.push_str(&format!("--b{level}--\r\n"));
    }
    assert_eq!(reply(raw.as_bytes()).refs, note_refs(false));
}

#[test]
fn deeply_nested_messages() {
    // Deep enough to overflow a 2 MiB test thread's stack if the parsed tree were dropped whole.
    let mut raw = "From: x@y.example\r\nContent-Type: message/rfc822\r\n\r\n".repeat(20_000);
    raw.push_str("Subject: the end\r\n\r\nhi\r\n");
    let outer = format!(
        "From: MAILER-DAEMON@mx.example\r\nSubject: Returned mail\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n\
         --z\r\nContent-Type: text/plain\r\n\r\n550 5.1.1 <zoe@far.example> gone\r\n--z\r\n{raw}--z--\r\n"
    );
    assert_eq!(bounce(outer.as_bytes()).status.as_deref(), Some("5.1.1"));
}

#[test]
fn thirty_megabyte_attachment() {
    let mut raw = reply_head("", "multipart/mixed; boundary=\"att\"");
    raw.push_str("--att\r\nContent-Type: text/plain\r\n\r\nPhotos of the cake attached.\r\n");
    raw.push_str("--att\r\nContent-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    let line = format!("{}\r\n", "QUJD".repeat(19));
    raw.push_str(&line.repeat(30 * 1024 * 1024 / line.len()));
    raw.push_str("--att--\r\n");
    assert_eq!(
        reply(raw.as_bytes()).excerpt,
        "Photos of the cake attached."
    );
}

#[test]
fn thirty_megabyte_text_in_a_failure_notice() {
    let mut raw = String::from(
        "From: MAILER-DAEMON@mx.example\r\nSubject: Mail delivery failed\r\n\
         Content-Type: multipart/mixed; boundary=\"q\"\r\n\r\n--q\r\nContent-Type: text/plain\r\n\r\n\
         550 5.1.1 <nina@far.example>: no such user\r\n--q\r\nContent-Type: text/plain\r\n\r\n",
    );
    raw.push_str(&"quoted text without ids ".repeat(30 * 1024 * 1024 / 24));
    raw.push_str(&format!("\r\nMessage-ID: {NOTE}\r\n--q--\r\n"));
    let b = bounce(raw.as_bytes());
    assert_eq!(b.recipient.as_deref(), Some("nina@far.example"));
    // The id lies past what is scanned of a part: it is not looked for there.
    assert!(b.refs.message_ids.is_empty());
}

#[test]
fn non_utf8_everywhere() {
    let raw = b"From: \xff\xfe \xc3\x28 <ann@customer.example>\r\nIn-Reply-To: <5f2c8e1a9b3d4c7e8f0a1b2c3d4e5f60.rekindle@bakery.example>\r\nSubject: \x80\x81\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nMerci \xe9 \xff beaucoup\r\n";
    let r = reply(raw);
    assert_eq!(r.refs, note_refs(false));
    assert!(r.excerpt.starts_with("Merci"));
}
