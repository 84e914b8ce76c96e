//! `/unsubscribe?c=<customer>&t=<token>`, the link in every note: `GET` shows the customer's
//! preferences page and never changes anything (mail scanners follow links); `POST` with
//! `List-Unsubscribe=One-Click` (RFC 8058, urlencoded or multipart) stops every note, and the
//! page's own forms save a choice, stop or start again.
//!
//! A token that does not verify (forged, another customer's, signed with a secret rotated out)
//! and an unknown customer get the same answer. Tokens are compared in constant time and never
//! logged; the page shows nothing of the customer but their first name.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use jiff::Timestamp;
use sha2::{Digest, Sha256};
use tracing::{error, info};

use super::page::{self, Generic, Notice, Page};
use super::{Web, client, html};
use crate::compose::unsubscribe;
use crate::config::{Config, DIGEST_RULE, Secret};
use crate::decide::{Category, EVERY_DAYS};
use crate::error::Error;
use crate::load::Loaded;
use crate::log::Log;
use crate::outbox::{Outbox, Setting, Stop};

/// When the link-signing secret in force was first seen, for the configuration it belongs to.
pub(super) struct Rotation {
    /// The configuration (its address: a reload makes a new one).
    loaded: usize,
    /// When its secret was first seen.
    since: Timestamp,
}

/// What is kept of a secret in the state database: enough to see it changed, nothing more.
#[derive(serde::Serialize, serde::Deserialize)]
struct SeenSecret {
    hash: String,
    since: i64,
}

/// The link's two parameters.
struct Link {
    customer: String,
    token: String,
}

impl Link {
    fn parse(query: Option<&str>) -> Option<Link> {
        let (mut customer, mut token) = (None, None);
        for (key, value) in form_urlencoded::parse(query?.as_bytes()) {
            match &*key {
                "c" => customer = Some(value.into_owned()),
                "t" => token = Some(value.into_owned()),
                _ => {}
            }
        }
        Some(Link {
            customer: customer?,
            token: token?,
        })
    }
}

/// What a POST asks for.
enum Ask {
    /// The mail client's unsubscribe button (RFC 8058).
    OneClick,
    /// The page's "Save": the kinds kept, and the personal cap.
    Save {
        kept: Vec<Category>,
        every_days: Option<u32>,
    },
    /// The page's "Stop every note".
    Stop,
    /// The page's "Start again".
    Resume,
}

/// `GET /unsubscribe`: the preferences page.
pub(super) async fn show(
    State(web): State<Arc<Web>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    answer(web, peer, &headers, query, None).await
}

/// `POST /unsubscribe`: one-click, or one of the page's forms.
pub(super) async fn change(
    State(web): State<Arc<Web>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let ask = read_form(&content_type, body).await;
    answer(web, peer, &headers, query, Some(ask)).await
}

/// Rate-limits the client, then answers on a blocking thread (SQLite).
async fn answer(
    web: Arc<Web>,
    peer: std::net::SocketAddr,
    headers: &HeaderMap,
    query: Option<String>,
    ask: Option<Option<Ask>>,
) -> Response {
    let loaded = (web.context.loaded)();
    let (business, lang) = (
        loaded.config.sender.business.clone(),
        loaded.config.language.clone(),
    );
    if web.limiter.check_key(&client(peer, headers)).is_err() {
        let mut response = html(
            StatusCode::TOO_MANY_REQUESTS,
            page::generic(Generic::TooMany, &business, &lang),
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("60"),
        );
        return response;
    }
    let done =
        tokio::task::spawn_blocking(move || visit(&web, &loaded, query.as_deref(), ask)).await;
    match done {
        Ok(Ok(response)) => response,
        Ok(Err(err)) => {
            error!(error = %err, "web face: cannot answer a customer's request; nothing was changed");
            html(
                StatusCode::SERVICE_UNAVAILABLE,
                page::generic(Generic::Error, &business, &lang),
            )
        }
        Err(err) => {
            error!(error = %err, "web face: a request's work ended abnormally");
            html(
                StatusCode::INTERNAL_SERVER_ERROR,
                page::generic(Generic::Error, &business, &lang),
            )
        }
    }
}

/// The form a POST carries: `None` when it is neither one-click nor one of the page's.
async fn read_form(content_type: &str, body: Bytes) -> Option<Ask> {
    let mut fields: Vec<(String, String)> = Vec::new();
    if let Ok(boundary) = multer::parse_boundary(content_type) {
        let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
        let mut parts = multer::Multipart::new(stream, boundary);
        while let Ok(Some(part)) = parts.next_field().await {
            let name = part.name().unwrap_or_default().to_string();
            let Ok(value) = part.text().await else {
                return None;
            };
            fields.push((name, value));
        }
    } else {
        fields = form_urlencoded::parse(&body).into_owned().collect();
    }
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
    };
    if field("List-Unsubscribe") == Some("One-Click") {
        return Some(Ask::OneClick);
    }
    match field("do")? {
        "stop" => Some(Ask::Stop),
        "resume" => Some(Ask::Resume),
        "save" => {
            let every_days = match field("every").unwrap_or("0") {
                "0" => None,
                n => Some(n.parse().ok().filter(|d| EVERY_DAYS.contains(d))?),
            };
            let kept = Category::ALL
                .into_iter()
                .filter(|c| field(&format!("want_{}", c.key())) == Some("on"))
                .collect();
            Some(Ask::Save { kept, every_days })
        }
        _ => None,
    }
}

/// The answer to one visit of a customer's link, with what it changes recorded first.
fn visit(
    web: &Web,
    loaded: &Arc<Loaded>,
    query: Option<&str>,
    ask: Option<Option<Ask>>,
) -> Result<Response, Error> {
    let config = &loaded.config;
    let (business, default_lang) = (&config.sender.business, &config.language);
    let invalid = || {
        html(
            StatusCode::NOT_FOUND,
            page::generic(Generic::Invalid, business, default_lang),
        )
    };
    let Some(link) = Link::parse(query) else {
        return Ok(invalid());
    };
    let outbox = Outbox::open(&config.state_path)?;
    let now = crate::clock::now();
    let secrets = secrets(web, loaded, &outbox, now)?;
    if !secrets
        .iter()
        .any(|s| unsubscribe::verify(s, &link.customer, &link.token))
    {
        return Ok(invalid());
    }
    let customer = link.customer.as_str();
    if let Some(Some(Ask::OneClick)) = ask {
        if outbox.stop(customer, Stop::OneClick, now)? {
            info!(customer_id = %customer, "one-click unsubscribe: every note to this customer stops");
        }
        return Ok(html(
            StatusCode::OK,
            page::generic(Generic::Unsubscribed, business, default_lang),
        ));
    }
    let log = Log::open(&config.log_path)?;
    let Some((row, _)) = log.customer(customer)? else {
        return Ok(invalid());
    };
    let recipient = crate::compose::recipient(&row, config, now).ok();
    let first_name = recipient
        .as_ref()
        .and_then(|r| r.context.first_name())
        .map(str::to_string);
    let tag = recipient.map_or_else(|| default_lang.clone(), |r| r.language);
    let lang = page_language(loaded, &tag);
    let mut preference = outbox.preference(customer)?;
    let shown = categories(config);
    let (status, notice) = match ask {
        None => (StatusCode::OK, None),
        Some(None) => (StatusCode::BAD_REQUEST, None),
        Some(Some(Ask::OneClick)) => (StatusCode::OK, None),
        Some(Some(Ask::Save { kept, every_days })) => {
            let before = preference.clone();
            for category in &shown {
                match kept.contains(category) {
                    true => preference.refused.remove(category),
                    false => preference.refused.insert(*category),
                };
            }
            preference.every_days = every_days;
            if preference != before {
                outbox.set_preference(customer, &preference, now)?;
                info!(customer_id = %customer, preference = %preference.describe(), "preferences saved");
            }
            (StatusCode::OK, Some(Notice::Saved))
        }
        Some(Some(Ask::Stop)) => {
            if outbox.stop(customer, Stop::Page, now)? {
                info!(customer_id = %customer, "stopped every note on the preferences page");
            }
            (StatusCode::OK, Some(Notice::Stopped))
        }
        Some(Some(Ask::Resume)) => {
            if outbox.resume(customer)? {
                info!(customer_id = %customer, "started again on the preferences page");
            }
            (StatusCode::OK, Some(Notice::Resumed))
        }
    };
    let action = format!(
        "?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("c", customer)
            .append_pair("t", &link.token)
            .finish()
    );
    let categories: Vec<(Category, bool)> = shown
        .iter()
        .map(|c| (*c, !preference.refused.contains(c)))
        .collect();
    let page = Page {
        business,
        lang: &lang,
        first_name: first_name.as_deref(),
        action: &action,
        categories: &categories,
        every_days: preference.every_days,
        stopped: outbox.stopped(customer)?,
        notice,
    };
    Ok(html(status, page::preferences(&page)))
}

/// The kinds of notes this business sends, in the page's order: its rules', the ones switched off
/// for now included (a customer may refuse a card before its season opens).
fn categories(config: &Config) -> Vec<Category> {
    let mut sent: Vec<Category> = config
        .rules
        .iter()
        .filter(|r| r.name != DIGEST_RULE)
        .map(|r| Category::of(&r.kind))
        .collect();
    sent.sort();
    sent.dedup();
    sent
}

/// The language the customer's notes are written in (a rule's template in their language if
/// there is one, else the default's): the page speaks it too.
fn page_language(loaded: &Loaded, tag: &str) -> String {
    match loaded.config.rules.iter().find(|r| r.enabled) {
        Some(rule) => loaded.templates.speak(&rule.template, tag).1,
        None => loaded.config.language.clone(),
    }
}

/// The secrets a link may be signed with now: the one in force, and the previous one within
/// `[http] previous_secret_for` of the moment the one in force was first seen.
fn secrets(
    web: &Web,
    loaded: &Arc<Loaded>,
    outbox: &Outbox,
    now: Timestamp,
) -> Result<Vec<Secret>, Error> {
    let config = &loaded.config;
    let Some(current) = config.sender.unsubscribe_secret.clone() else {
        return Ok(Vec::new());
    };
    let Some((previous, accepted_for)) = config
        .http
        .as_ref()
        .and_then(|h| Some((h.previous_secret.clone()?, h.previous_secret_for)))
    else {
        return Ok(vec![current]);
    };
    let key = Arc::as_ptr(loaded) as usize;
    let cached = web
        .rotation
        .lock()
        .ok()
        .and_then(|r| r.as_ref().filter(|r| r.loaded == key).map(|r| r.since));
    let since = match cached {
        Some(since) => since,
        None => {
            let since = first_seen(outbox, &current, now)?;
            if let Ok(mut rotation) = web.rotation.lock() {
                *rotation = Some(Rotation { loaded: key, since });
            }
            since
        }
    };
    Ok(match now < since + accepted_for {
        true => vec![current, previous],
        false => vec![current],
    })
}

/// Notes when the link-signing secret in force was first seen, at start and within a minute of
/// a reload, so the previous one's period counts from the rotation, not from the first visit
/// after it. Only when a previous secret is configured.
pub(super) fn note_rotation(web: &Web) {
    let loaded = (web.context.loaded)();
    let config = &loaded.config;
    if config
        .http
        .as_ref()
        .is_none_or(|h| h.previous_secret.is_none())
    {
        return;
    }
    let noted = Outbox::open(&config.state_path)
        .map_err(Error::from)
        .and_then(|outbox| secrets(web, &loaded, &outbox, crate::clock::now()));
    if let Err(err) = noted {
        error!(error = %err, "web face: cannot note when the link-signing secret changed; it is noted at the next visit");
    }
}

/// When `secret` was first seen in force (now, if it is new), kept in the state database.
fn first_seen(outbox: &Outbox, secret: &Secret, now: Timestamp) -> Result<Timestamp, Error> {
    let hash = hex::encode(&Sha256::digest(secret.bytes())[..8]);
    if let Some(seen) = outbox.setting::<SeenSecret>(Setting::LinkSecret)?
        && seen.hash == hash
        && let Ok(since) = Timestamp::from_second(seen.since)
    {
        return Ok(since);
    }
    let seen = SeenSecret {
        hash,
        since: now.as_second(),
    };
    outbox.set_setting(Setting::LinkSecret, &seen)?;
    info!(
        "the link-signing secret in force is new: links signed with the previous one are accepted for [http] previous_secret_for from now"
    );
    Ok(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(content_type: &str, body: &str) -> Option<Ask> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(read_form(content_type, Bytes::from(body.to_string())))
    }

    #[test]
    fn one_click_is_read_urlencoded_and_multipart() {
        let urlencoded = "application/x-www-form-urlencoded";
        assert!(matches!(
            ask(urlencoded, "List-Unsubscribe=One-Click"),
            Some(Ask::OneClick)
        ));
        let multipart = "multipart/form-data; boundary=XyZ";
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XyZ--\r\n";
        assert!(matches!(ask(multipart, body), Some(Ask::OneClick)));
        assert!(ask(urlencoded, "List-Unsubscribe=Later").is_none());
        assert!(ask(multipart, "--XyZ\r\ngarbage").is_none());
        assert!(ask(urlencoded, "").is_none());
    }

    #[test]
    fn the_pages_form_reads_as_the_choices_made() {
        let form = "application/x-www-form-urlencoded";
        let Some(Ask::Save { kept, every_days }) =
            ask(form, "want_apologies=on&want_followups=on&every=30&do=save")
        else {
            panic!("not read as a save");
        };
        assert_eq!(kept, vec![Category::Apologies, Category::Followups]);
        assert_eq!(every_days, Some(30));
        assert!(
            ask(form, "every=7&do=save").is_none(),
            "a cap the page does not offer"
        );
        assert!(matches!(ask(form, "do=stop"), Some(Ask::Stop)));
        assert!(matches!(ask(form, "do=resume"), Some(Ask::Resume)));
        assert!(ask(form, "do=delete").is_none());
    }
}
