//! Signed unsubscribe links: `https://…/unsubscribe?c=<customer>&t=<token>`, where the token is
//! an HMAC-SHA256 of the customer id under a secret the business's web page shares, so a link
//! cannot be forged for another customer (RFC 8058 one-click unsubscribe).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Secret;

/// The HMAC of `customer_id`'s token, before it is finalised.
fn mac(secret: &Secret, customer_id: &str) -> Hmac<Sha256> {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(b"unsubscribe:");
    mac.update(customer_id.as_bytes());
    mac
}

/// Whether `token` is `customer_id`'s under `secret`, compared in constant time (hmac's own
/// check of a truncated tag): how long the answer takes says nothing of how much of a guess
/// was right.
pub(crate) fn verify(secret: &Secret, customer_id: &str, token: &str) -> bool {
    let bytes: Option<Vec<u8>> = (token.len() == 32)
        .then(|| {
            (0..16)
                .map(|i| u8::from_str_radix(token.get(2 * i..2 * i + 2)?, 16).ok())
                .collect()
        })
        .flatten();
    bytes.is_some_and(|b| mac(secret, customer_id).verify_truncated_left(&b).is_ok())
}

/// The token for `customer_id`: 32 hex digits of HMAC-SHA256("unsubscribe:" + id).
pub(crate) fn token(secret: &Secret, customer_id: &str) -> String {
    hex::encode(&mac(secret, customer_id).finalize().into_bytes()[..16])
}

/// The customer's own unsubscribe link under `base`.
pub(crate) fn link(base: &str, secret: &Secret, customer_id: &str) -> String {
    let separator = if base.contains('?') { '&' } else { '?' };
    let id: String = customer_id
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("{base}{separator}c={id}&t={}", token(secret, customer_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_per_customer_and_unforgeable_without_the_secret() {
        let secret = Secret::new("s3cret\n");
        let a = link("https://bakery.example/unsubscribe", &secret, "42");
        assert!(
            a.starts_with("https://bakery.example/unsubscribe?c=42&t="),
            "{a}"
        );
        assert_eq!(
            a.len(),
            "https://bakery.example/unsubscribe?c=42&t=".len() + 32
        );
        assert_eq!(a, link("https://bakery.example/unsubscribe", &secret, "42"));
        assert_ne!(token(&secret, "42"), token(&secret, "43"));
        assert_ne!(token(&secret, "42"), token(&Secret::new("other"), "42"));
        assert!(
            link("https://b.example/u?list=1", &secret, "a b")
                .starts_with("https://b.example/u?list=1&c=a%20b&t=")
        );
        assert_eq!(format!("{secret:?}"), "Secret([redacted])");
        let t = token(&secret, "42");
        assert!(verify(&secret, "42", &t));
        assert!(
            verify(&secret, "42", &t.to_uppercase()),
            "hex in either case"
        );
        assert!(!verify(&secret, "43", &t), "another customer's token");
        assert!(!verify(&Secret::new("other"), "42", &t), "another secret");
        assert!(!verify(&secret, "42", &t[..31]));
        assert!(!verify(&secret, "42", &format!("{}zz", &t[..30])));
        assert!(!verify(&secret, "42", ""));
        assert!(!verify(&secret, "42", "é".repeat(16).as_str()));
    }
}
