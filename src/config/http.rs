//! `[http]`: the web face (one-click unsubscribe, the preferences page, `/healthz`, `/metrics`),
//! as written and checked. It sits behind the business's reverse proxy, which terminates TLS;
//! `public_url` is the address customers see, and the links in notes are built on it.

use std::net::SocketAddr;

use super::raw::RawHttp;
use super::validate::Validator;
use super::{Secret, SecretSource, Sender};
use jiff::SignedDuration;

/// `[http]`, checked.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    /// Where the listener binds.
    pub listen: SocketAddr,
    /// The address customers see, without a trailing slash.
    pub public_url: String,
    /// Where the previous link-signing secret is read from, after a rotation.
    pub previous_secret_source: Option<SecretSource>,
    /// That secret, once read.
    pub previous_secret: Option<Secret>,
    /// How long after the rotation the previous secret is accepted.
    pub previous_secret_for: SignedDuration,
    /// Requests a minute from one client address.
    pub rate_limit: u32,
    /// The longest a request may take to arrive.
    pub request_timeout: SignedDuration,
}

/// Whether `url` may be the public address: https, or plain http to this machine (a test or a
/// look before the proxy is set up).
fn public_url_problem(url: &str) -> Option<String> {
    let rest = match url.split_once("://") {
        Some(("https", rest)) => return rest.is_empty().then(|| "it has no host".to_string()),
        Some(("http", rest)) => rest,
        _ => return Some("it must be an https:// address".to_string()),
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    match ["localhost", "127.0.0.1", "[::1]"].contains(&host) {
        true => None,
        false => Some(
            "it must be an https:// address (plain http:// only to localhost): customers' mail clients post the one-click unsubscribe to it"
                .to_string(),
        ),
    }
}

impl Validator<'_> {
    /// `[http]`, checked, with what it changes in `sender`: the unsubscribe links are built on
    /// `public_url`, and mail clients are told they may unsubscribe with one POST. `Some(None)`
    /// when the section is absent; `None` when something is wrong (each problem recorded).
    pub(super) fn http(
        &mut self,
        raw: Option<RawHttp>,
        sender: Option<&mut Sender>,
    ) -> Option<Option<Http>> {
        let Some(raw) = raw else {
            return Some(None);
        };
        let listen = match raw.listen.get_ref().parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                let message = format!(
                    "http.listen \"{}\" is not an address and port; write e.g. \"127.0.0.1:8026\"",
                    raw.listen.get_ref()
                );
                self.error(raw.listen.span(), message);
                None
            }
        };
        let public_url = raw.public_url.get_ref().trim_end_matches('/').to_string();
        if let Some(problem) = public_url_problem(&public_url) {
            let message = format!("http.public_url \"{public_url}\": {problem}");
            self.error(raw.public_url.span(), message);
        }
        if let Some(sender) = sender {
            if sender.unsubscribe_url.is_some() {
                let message = "[http] serves the unsubscribe link itself at public_url: remove [sender] unsubscribe_url (or [http])".to_string();
                self.error(raw.public_url.span(), message);
            } else if sender.unsubscribe_secret_source.is_none() {
                let message = "[http] needs [sender] unsubscribe_secret_file or unsubscribe_secret_env: the links it serves are signed so nobody can change someone else's notes".to_string();
                self.error(raw.public_url.span(), message);
            }
            sender.unsubscribe_url = Some(format!("{public_url}/unsubscribe"));
            sender.one_click = true;
        }
        let previous = self.secret_source(
            "http",
            "previous_secret",
            raw.previous_secret_file,
            raw.previous_secret_env,
        );
        let previous_for = self.duration("http.previous_secret_for", &raw.previous_secret_for);
        let timeout = self.duration("http.request_timeout", &raw.request_timeout);
        if timeout.is_some_and(|t| t < SignedDuration::from_secs(1)) {
            let message = "http.request_timeout must be at least 1s".to_string();
            self.error(raw.request_timeout.span(), message);
        }
        if raw.rate_limit == 0 {
            let message = "http.rate_limit must be at least 1 request a minute".to_string();
            self.diagnostics
                .push(super::Diagnostic::error_in(self.file, message));
        }
        Some(Some(Http {
            listen: listen?,
            public_url,
            previous_secret_source: previous,
            previous_secret: None,
            previous_secret_for: previous_for?,
            rate_limit: raw.rate_limit,
            request_timeout: timeout?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::public_url_problem;

    #[test]
    fn the_public_address_is_https_or_this_machine() {
        assert_eq!(public_url_problem("https://bakery.example/rekindle"), None);
        assert_eq!(public_url_problem("http://127.0.0.1:8026"), None);
        assert_eq!(public_url_problem("http://localhost/x"), None);
        assert!(public_url_problem("http://bakery.example").is_some());
        assert!(public_url_problem("bakery.example").is_some());
        assert!(public_url_problem("https://").is_some());
    }
}
