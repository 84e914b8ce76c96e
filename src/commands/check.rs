//! `rekindle check`: validate the configuration, the templates and the log, and say what runs when.

use std::path::Path;

use crate::config::smtp::Tls;
use crate::deliver::trust::Trust;
use crate::error::Error;
use crate::load::load;

/// `rekindle check`.
pub(crate) fn check(path: &Path) -> Result<(), Error> {
    let loaded = load(path)?;
    let config = &loaded.config;
    say!(
        "{}: ok: {} rule(s), log {}, state {}, transport {}",
        config.file.display(),
        config.rules.len(),
        config.log_path.display(),
        config.state_path.display(),
        match &config.transport {
            crate::config::Transport::Maildir { dir } => format!("maildir {}", dir.display()),
            crate::config::Transport::Smtp(servers) => format!(
                "smtp {}",
                servers
                    .iter()
                    .map(|s| s.host.as_str())
                    .collect::<Vec<_>>()
                    .join(", then ")
            ),
        }
    );
    if let crate::config::Transport::Smtp(servers) = &config.transport {
        for smtp in servers {
            let tls = match smtp.tls {
                Tls::None => "no TLS".to_string(),
                tls => match Trust::for_server(smtp, config.base_dir()) {
                    Ok(trust) => format!(
                        "{}, the certificate for {} checked against {}",
                        if tls == Tls::Implicit {
                            "implicit TLS"
                        } else {
                            "STARTTLS"
                        },
                        smtp.certificate_name(),
                        trust.describe()
                    ),
                    Err(why) => why.to_string(),
                },
            };
            say!("  smtp {}: {tls}", smtp.label());
        }
    }
    for rule in &config.rules {
        let mut when: Vec<String> = rule
            .schedule
            .iter()
            .map(|s| format!("schedule \"{}\"", s.text))
            .collect();
        if rule.on_interaction {
            when.push("on new interactions".into());
        }
        say!(
            "  rule {:<20} {:<9} {}, priority {}, template {}{}",
            rule.name,
            rule.kind.name(),
            when.join(" and "),
            rule.priority,
            rule.template,
            if rule.enabled { "" } else { " (disabled)" }
        );
    }
    Ok(())
}
