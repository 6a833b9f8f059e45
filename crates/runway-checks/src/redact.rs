//! Keeping secrets out of results.
//!
//! Check results are printed, logged, stored as JSON and sent to chat. The values that
//! `env:NAME` / `secret:NAME` references resolve to, and passwords written into URLs,
//! must never reach any of those. Libraries do not promise to keep them out of their
//! error messages, so instead of trusting each message, every detail passes through a
//! [`Redactor`] that knows the secret values of its check and replaces them with `***`,
//! and that also masks the password part of anything that looks like a URL.

/// What replaces a secret.
pub const MASK: &str = "***";

/// Replaces known secret values and URL passwords in text.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Longest first, so that a secret containing another is masked whole.
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a secret value (ignored if empty). A value that is a URL with a
    /// password also registers that password, raw and percent-decoded, since libraries
    /// may echo either form.
    pub fn add(&mut self, secret: &str) {
        self.add_url(secret);
        self.push(secret.to_string());
    }

    /// Registers only the password of a URL (raw and percent-decoded), if it has one:
    /// the rest of a URL written in plain sight is not secret.
    pub fn add_url(&mut self, url: &str) {
        if let Some(password) = url_password(url) {
            let decoded = percent_decode(password);
            self.push(password.to_string());
            self.push(decoded);
        }
    }

    fn push(&mut self, s: String) {
        if s.is_empty() || self.secrets.contains(&s) {
            return;
        }
        self.secrets.push(s);
        self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// `text` with every registered secret and every URL password replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        redact_urls_in(&out)
    }
}

/// The password of `scheme://user:password@host…`, if any.
fn url_password(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    Some(password)
}

/// Masks the password of every `scheme://user:password@host` found in free text.
pub fn redact_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at a path, query, fragment, or anything that ends a URL in
        // prose (whitespace, quotes, brackets).
        let end = tail
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '`') || c.is_whitespace()
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority
            .rsplit_once('@')
            .and_then(|(userinfo, host)| Some((userinfo.split_once(':')?.0, host)))
        {
            Some((user, host)) => {
                out.push_str(user);
                out.push(':');
                out.push_str(MASK);
                out.push('@');
                out.push_str(host);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_registered_secrets_and_url_passwords() {
        let mut r = Redactor::new();
        r.add("hunter2");
        r.add("postgres://app:p%40ss@db:5432/app");
        let text = "auth failed for hunter2 at postgres://app:p%40ss@db:5432/app (password p@ss)";
        let out = r.redact(text);
        assert!(!out.contains("hunter2") && !out.contains("p%40ss") && !out.contains("p@ss"));
        assert_eq!(out, "auth failed for *** at *** (password ***)");
    }

    #[test]
    fn masks_passwords_of_unregistered_urls_in_text() {
        assert_eq!(
            redact_urls_in("GET http://u:pw@h:80/x?a=b failed; see redis://:s3@r:6379/0."),
            "GET http://u:***@h:80/x?a=b failed; see redis://:***@r:6379/0."
        );
        assert_eq!(redact_urls_in("http://h/a@b:c"), "http://h/a@b:c");
        assert_eq!(redact_urls_in("no urls here"), "no urls here");
        assert_eq!(redact_urls_in("http://user@h/"), "http://user@h/");
    }

    #[test]
    fn longer_secrets_win_and_empty_ones_are_ignored() {
        let mut r = Redactor::new();
        r.add("abc");
        r.add("abcdef");
        r.add("");
        assert_eq!(r.redact("x abcdef y abc"), "x *** y ***");
        assert_eq!(r.redact("nothing"), "nothing");
        assert_eq!(format!("{r:?}"), "Redactor(2 secrets)");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%40b%2"), "a@b%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
