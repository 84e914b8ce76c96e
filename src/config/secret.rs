//! A secret read from a file or the environment (the unsubscribe links' signing key): it never
//! prints, in a log line, an error or a Debug print.

/// A secret that never prints.
#[derive(Clone)]
pub(crate) struct Secret(Vec<u8>);

impl Secret {
    /// Wraps the secret's bytes (surrounding whitespace trimmed).
    pub(crate) fn new(text: &str) -> Secret {
        Secret(text.trim().as_bytes().to_vec())
    }

    /// The secret's bytes, for signing.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}
