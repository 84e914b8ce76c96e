//! A text part's body, encoded as lettre's `Body::new` encodes it, byte for byte, at a fraction
//! of its cost: the same choice of 7bit, quoted-printable or base64 (as `email-encoding`, lettre's
//! chooser, makes it for a server without SMTPUTF8), each in passes the compiler can vectorise;
//! quoted-printable written into bytes in one pass that also makes every line break CRLF, its
//! plain runs found through a table (lettre's encoding of the two bodies was half of delivery's
//! instructions; choosing the encoding and a CRLF pass were still about 40% of this one's).
//! Base64, chosen only when a third of the bytes would need escaping (Greek, Cyrillic, Chinese),
//! is left to lettre.

use lettre::message::Body;
use lettre::message::header::ContentTransferEncoding;

/// The longest encoded line of quoted-printable, without its CRLF (RFC 2045, 6.7).
const LIMIT: usize = 76;

/// `text` as the body of a MIME part.
pub(super) fn body(text: &str) -> Body {
    match choose(text.as_bytes()) {
        ContentTransferEncoding::SevenBit => {
            Body::dangerous_pre_encoded(crlf(text), ContentTransferEncoding::SevenBit)
        }
        ContentTransferEncoding::QuotedPrintable => Body::dangerous_pre_encoded(
            quoted_printable(text.as_bytes()),
            ContentTransferEncoding::QuotedPrintable,
        ),
        _ => Body::new(text.to_string()),
    }
}

/// The encoding `email-encoding` chooses for a text (`Encoding::choose(text, false)`): 7bit
/// for ASCII in short lines, else quoted-printable unless more than a third of the bytes would
/// need escaping, else base64. Its quirks kept: the first line is long at 76 bytes, the others
/// at 75, and line breaks count as bytes to escape.
fn choose(bytes: &[u8]) -> ContentTransferEncoding {
    if bytes.is_ascii() && !line_too_long(bytes) {
        return ContentTransferEncoding::SevenBit;
    }
    // Counted in blocks a byte-wide counter cannot overflow, so that it vectorises.
    let escaped: usize = bytes
        .chunks(255)
        .map(|block| {
            let n: u8 = block
                .iter()
                .map(|&b| u8::from(b != b'\t' && !(b' '..=b'~').contains(&b)))
                .sum();
            usize::from(n)
        })
        .sum();
    match escaped <= bytes.len() / 3 {
        true => ContentTransferEncoding::QuotedPrintable,
        false => ContentTransferEncoding::Base64,
    }
}

/// `email-encoding`'s test of line length: from one line break to the next (the first line from
/// the start), 76 bytes or more.
fn line_too_long(bytes: &[u8]) -> bool {
    let mut last = 0;
    let mut at = 0;
    for line in bytes.split(|&b| b == b'\n') {
        at += line.len();
        if at - last >= 76 {
            return true;
        }
        last = at;
        at += 1;
    }
    false
}

/// `text` with every line break CRLF (a lone LF gets its CR; a CR already there is kept).
fn crlf(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 32 + 2);
    let mut start = 0;
    for (at, _) in text.match_indices('\n') {
        if at == 0 || bytes[at - 1] != b'\r' {
            out.extend_from_slice(&bytes[start..at]);
            out.push(b'\r');
            start = at;
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out
}

/// Bytes quoted-printable copies as they are (RFC 2045, 6.7 (2)): the tab and printable ASCII
/// but `=` (a space or tab is escaped only before a line break).
const PLAIN: [bool; 256] = {
    let mut plain = [false; 256];
    let mut b = 0;
    while b < 256 {
        plain[b] =
            b == b'\t' as usize || (b >= b' ' as usize && b <= b'~' as usize && b != b'=' as usize);
        b += 1;
    }
    plain
};

/// Quoted-printable of `input`, its line breaks made CRLF (a lone LF is a line break, a lone CR
/// is `=0D`), as the `quoted_printable` crate writes the CRLF text in text mode: runs of plain
/// bytes copied whole, `=XX` for the rest, soft line breaks at [`LIMIT`], a space or tab before
/// a line break encoded.
fn quoted_printable(input: &[u8]) -> Vec<u8> {
    let mut out = Line {
        out: Vec::with_capacity(input.len() + input.len() / 8),
        on_line: 0,
        backup: 0,
    };
    let mut i = 0;
    while i < input.len() {
        let byte = input[i];
        i += 1;
        match byte {
            b'\r' if input.get(i) == Some(&b'\n') => {
                i += 1;
                out.line_break();
            }
            b'\n' => out.line_break(),
            _ if PLAIN[usize::from(byte)] && LIMIT - out.on_line >= 3 => {
                // A run of plain bytes, as long as the line leaves room for.
                let start = i - 1;
                let stop = input.len().min(start + LIMIT - out.on_line - 2);
                let end = input[i..stop]
                    .iter()
                    .position(|&b| !PLAIN[usize::from(b)])
                    .map_or(stop, |n| i + n);
                out.out.extend_from_slice(&input[start..end]);
                out.on_line += end - start;
                out.backup = out.out.len();
                i = end;
            }
            // A plain byte where the line has no room for a run: its soft break comes first.
            _ if PLAIN[usize::from(byte)] => out.append(&[byte]),
            _ => out.append(&hex_escape(byte)),
        }
    }
    out.encode_trailing_blank();
    out.out
}

fn hex_escape(byte: u8) -> [u8; 3] {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    [
        b'=',
        HEX[usize::from(byte >> 4)],
        HEX[usize::from(byte & 0x0F)],
    ]
}

/// The encoded output and where its current line stands.
struct Line {
    out: Vec<u8>,
    /// Bytes on the current line.
    on_line: usize,
    /// Where the last thing appended began: a soft line break goes there when the line is full.
    backup: usize,
}

impl Line {
    fn append(&mut self, piece: &[u8]) {
        if self.on_line + piece.len() > LIMIT {
            if self.on_line == LIMIT {
                self.on_line = self.out.len() - self.backup;
                self.out
                    .splice(self.backup..self.backup, b"=\r\n".iter().copied());
            } else {
                self.out.extend_from_slice(b"=\r\n");
                self.on_line = 0;
            }
        }
        self.out.extend_from_slice(piece);
        self.on_line += piece.len();
        self.backup = self.out.len() - piece.len();
    }

    /// A hard line break: CRLF, the blank before it encoded.
    fn line_break(&mut self) {
        self.encode_trailing_blank();
        self.out.extend_from_slice(b"\r\n");
        self.on_line = 0;
    }

    /// A space or tab must not end an encoded line: the last one is written as `=20` or `=09`.
    fn encode_trailing_blank(&mut self) {
        let escaped: &[u8] = match self.out.last() {
            Some(b' ') => b"=20",
            Some(b'\t') => b"=09",
            _ => return,
        };
        self.out.pop();
        self.on_line = self.on_line.saturating_sub(1);
        self.append(escaped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seeded run of text made of the pieces that matter to the encoding.
    fn texts() -> Vec<String> {
        let pieces: Vec<&str> = "a|word |Dear Ann,| |\t|=|\n|\r\n|\r|é|—|’|€|😀|.|From |<p style=\"m:0\">|x|  \n|\t\n|=\n|ÿ"
            .split('|')
            .collect();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut texts: Vec<String> = (0..4000)
            .map(|_| {
                let len = next(300);
                let plainness = next(8);
                (0..len)
                    .map(|_| match next(10) < plainness {
                        true => "abcdefghij klmnopqrst"[..1 + next(20)].to_string(),
                        false => pieces[next(pieces.len())].to_string(),
                    })
                    .collect()
            })
            .collect();
        for n in 70..=80 {
            for end in ["", " ", "\t", "=", "é", "\n", " \n", "\r"] {
                texts.push(format!("{}{end}", "x".repeat(n)));
                texts.push(format!("Hi\n{}{end}\nbye", "é".repeat(n / 2)));
                // ASCII: where its chooser's line length changes its mind.
                texts.push(format!("Hi\n{}{end}", "x".repeat(n)));
                texts.push(format!("Hi\r\n{}{end}\nbye", "x".repeat(n)));
            }
        }
        texts.extend(["".into(), "\n".into(), "\r".into(), " ".into(), "é".into()]);
        texts
    }

    /// Each body, its encoding and every byte, is what lettre's own `Body::new` makes.
    #[test]
    fn every_body_is_what_lettre_writes() {
        let mut seen = std::collections::BTreeMap::new();
        for text in texts() {
            let ours = body(&text);
            let lettres = Body::new(text.clone());
            assert_eq!(ours.encoding(), lettres.encoding(), "{text:?}");
            assert_eq!(
                String::from_utf8_lossy(ours.as_ref()),
                String::from_utf8_lossy(lettres.as_ref()),
                "{text:?}"
            );
            *seen.entry(format!("{:?}", ours.encoding())).or_insert(0) += 1;
        }
        for encoding in ["SevenBit", "QuotedPrintable", "Base64"] {
            assert!(seen.get(encoding).is_some_and(|n| *n > 10), "{seen:?}");
        }
    }

    /// The shipped templates' bodies, as a note carries them, encode as lettre encodes them.
    #[test]
    fn a_rendered_letter_encodes_as_lettre_encodes_it() {
        let html = crate::compose::letter_html(
            "<p>Dear Zoë,</p>\n<p>Thank you — truly — for “everything”.</p>",
            "en",
        );
        for text in [html.as_str(), "Dear Zoë,\n\nThank you.\n\nRosemary\n"] {
            let ours = body(text);
            let lettres = Body::new(text.to_string());
            assert_eq!(ours.encoding(), lettres.encoding());
            assert_eq!(ours.as_ref(), lettres.as_ref());
        }
    }
}
