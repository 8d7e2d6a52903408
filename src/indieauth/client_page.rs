//! What an IndieAuth client publishes about itself at its client_id URL (living standard,
//! revision of 11 July 2024, §4.2 to §4.2.2; draft-parecki-oauth-client-id-metadata-document-00):
//! a JSON client metadata document, or an HTML page with an h-app and `redirect_uri` links.
//! Pure: the caller fetches the page and hands over its body, content type and `Link` headers.
//!
//! The HTML reader is a small bounded scanner, not a full HTML or microformats parser. It finds
//! the first `h-app` (or `h-x-app`) element and reads `p-name`, `u-url` and `u-logo` in its
//! subtree, skipping the subtrees of nested microformats: the text of the first `p-name` (the
//! `alt` of an `img`), and the first `u-url` and `u-logo` that give an http or https URL. It
//! does not apply the microformats implied-property rules: without an explicit `p-name`, the
//! name is the `alt` text of an `img` with class `u-logo`, or nothing. An element ends at the matching end tag of its own name
//! (nested elements of that name are counted); the implied end tags of HTML are not modelled.
//! Relative URLs resolve against the URL the page was fetched from; `<base>` is not honoured.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use url::Url;

use super::urls::MAX_URL_LEN;

/// The largest body read, in bytes.
pub const MAX_BODY: usize = 512 * 1024;
/// The most tags (start and end) the HTML scanner visits; what it found before stands.
pub const MAX_TAGS: usize = 50_000;
/// The longest client name kept, in characters (Unicode scalar values).
pub const MAX_NAME_CHARS: usize = 100;
/// The most redirect URIs kept; later ones are dropped.
pub const MAX_REDIRECT_URIS: usize = 32;
/// The most bytes of a `p-name` element's text gathered before it is cleaned and cut.
const MAX_NAME_TEXT: usize = 4096;
/// Schemes a browser would run or embed instead of navigating to: never a redirect URI.
const UNSAFE_REDIRECT_SCHEMES: [&str; 5] = ["javascript", "vbscript", "data", "blob", "file"];

/// What a client says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientInfo {
    /// At most [`MAX_NAME_CHARS`] characters, whitespace trimmed and collapsed, control and
    /// bidirectional formatting characters removed.
    pub name: Option<String>,
    /// `client_uri` or `u-url` (http or https only).
    pub url: Option<Url>,
    /// `logo_uri` or `u-logo` (http or https only).
    pub logo: Option<Url>,
    /// Absolute URL strings: as published in JSON; in HTML and `Link` headers, resolved against
    /// the page's URL and serialized. Distinct, at most [`MAX_REDIRECT_URIS`], in order.
    pub redirect_uris: Vec<String>,
}

/// Why a client's page was refused. Messages complete "the client's metadata ...", and never
/// repeat what the body says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientPageError {
    #[error("is larger than {} KiB", MAX_BODY / 1024)]
    TooLarge,
    #[error("is neither JSON (application/json) nor HTML (text/html)")]
    UnsupportedType,
    #[error("is not valid UTF-8")]
    NotUtf8,
    #[error("is not well-formed JSON")]
    MalformedJson,
    #[error("is not a JSON object")]
    NotObject,
    #[error("{}", repeated_member(.0))]
    DuplicateMember(Option<&'static str>),
    #[error("has no client_id member")]
    MissingClientId,
    #[error("names a client_id other than the one asked for")]
    ClientIdMismatch,
    #[error("has a {member} that is not {expected}")]
    WrongType {
        member: &'static str,
        expected: &'static str,
    },
    #[error("has a {0} that is not an absolute http or https URL of at most {MAX_URL_LEN} bytes")]
    InvalidUrl(&'static str),
    #[error("has a client_uri that is not a prefix of its client_id")]
    ClientUriNotPrefix,
    #[error(
        "lists redirect URI number {0}, which is not an absolute URL of at most {MAX_URL_LEN} \
         bytes without a fragment, whitespace or a javascript, vbscript, data, blob or file scheme"
    )]
    InvalidRedirectUri(usize),
    #[error("asks for client secret authentication, which IndieAuth's public clients cannot use")]
    ConfidentialClient,
}

fn repeated_member(member: &Option<&'static str>) -> String {
    match member {
        Some(name) => format!("has more than one {name} member"),
        None => "has more than one member of the same name".to_owned(),
    }
}

/// Reads what a client publishes at its client_id URL. `client_id` is the identifier asked for,
/// `final_url` the URL the body was fetched from after redirects, `links` the response's `Link`
/// header values and `content_type` its `Content-Type`.
pub fn read_client_page(
    client_id: &str,
    final_url: &Url,
    content_type: Option<&str>,
    links: &[String],
    body: &[u8],
) -> Result<ClientInfo, ClientPageError> {
    if body.len() > MAX_BODY {
        return Err(ClientPageError::TooLarge);
    }
    match page_kind(content_type, body) {
        Some(PageKind::Json) => read_metadata_document(client_id, body),
        Some(PageKind::Html) => Ok(read_html(final_url, links, body).0),
        None => Err(ClientPageError::UnsupportedType),
    }
}

enum PageKind {
    Json,
    Html,
}

/// JSON for `application/json` and `application/*+json`, HTML for `text/html` or, without a
/// content type, for a body whose first non-blank character is `<`.
fn page_kind(content_type: Option<&str>, body: &[u8]) -> Option<PageKind> {
    let essence = content_type
        .and_then(|value| value.split(';').next())
        .map(str::trim)
        .filter(|essence| !essence.is_empty());
    let Some(essence) = essence else {
        let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        return (first == Some(&b'<')).then_some(PageKind::Html);
    };
    let essence = essence.to_ascii_lowercase();
    let structured_json = essence
        .strip_prefix("application/")
        .and_then(|subtype| subtype.strip_suffix("+json"))
        .is_some_and(|prefix| !prefix.is_empty());
    if essence == "application/json" || structured_json {
        Some(PageKind::Json)
    } else if essence == "text/html" {
        Some(PageKind::Html)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// The JSON client metadata document
// ---------------------------------------------------------------------------------------------

/// The members of a JSON object in order, each value left unparsed, duplicates kept.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for MembersVisitor<'a> {
            type Value = Members<'a>;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    let value: &'a RawValue = map.next_value()?;
                    members.push((name, value));
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor(std::marker::PhantomData))
    }
}

/// The members this reader knows; the rest are ignored.
const KNOWN_MEMBERS: [&str; 6] = [
    "client_id",
    "client_uri",
    "client_name",
    "logo_uri",
    "redirect_uris",
    "token_endpoint_auth_method",
];

fn read_metadata_document(client_id: &str, body: &[u8]) -> Result<ClientInfo, ClientPageError> {
    let text = std::str::from_utf8(body).map_err(|_| ClientPageError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Syntax first, so that broken JSON is never reported as a JSON value of another kind.
    serde_json::from_str::<IgnoredAny>(text).map_err(|_| ClientPageError::MalformedJson)?;
    let Members(members) =
        serde_json::from_str::<Members>(text).map_err(|_| ClientPageError::NotObject)?;
    let mut seen = HashSet::with_capacity(members.len());
    for (name, _) in &members {
        if !seen.insert(name.as_str()) {
            let known = KNOWN_MEMBERS.iter().find(|known| **known == name).copied();
            return Err(ClientPageError::DuplicateMember(known));
        }
    }
    let member = |name: &str| {
        members
            .iter()
            .find(|(member, _)| member == name)
            .map(|(_, value)| value.get())
    };
    let string = |name: &'static str| -> Result<Option<String>, ClientPageError> {
        member(name)
            .map(|raw| {
                serde_json::from_str::<String>(raw).map_err(|_| ClientPageError::WrongType {
                    member: name,
                    expected: "a string",
                })
            })
            .transpose()
    };

    let document_id = string("client_id")?.ok_or(ClientPageError::MissingClientId)?;
    // Equal as written, or after §3.4's canonicalization (the host's case, an empty path).
    let canonical = |id: &str| {
        super::urls::check_client_id(id)
            .map(|url| url.to_string())
            .ok()
    };
    if document_id != client_id
        && (canonical(&document_id).is_none() || canonical(&document_id) != canonical(client_id))
    {
        return Err(ClientPageError::ClientIdMismatch);
    }
    if string("token_endpoint_auth_method")?.is_some_and(|method| {
        method
            .get(..13)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("client_secret"))
    }) {
        return Err(ClientPageError::ConfidentialClient);
    }
    let url = match string("client_uri")? {
        Some(text) => {
            let url = web_url(&text).ok_or(ClientPageError::InvalidUrl("client_uri"))?;
            // A prefix must also keep the origin, or "https://bank.example" would prefix
            // "https://bank.example.evil/".
            let same_origin =
                Url::parse(client_id).is_ok_and(|id| super::urls::same_origin(&id, &url));
            if !client_id.starts_with(text.as_str()) || !same_origin {
                return Err(ClientPageError::ClientUriNotPrefix);
            }
            Some(url)
        }
        None => None,
    };
    let name = string("client_name")?.as_deref().and_then(clean_name);
    let logo = match string("logo_uri")? {
        Some(text) => Some(web_url(&text).ok_or(ClientPageError::InvalidUrl("logo_uri"))?),
        None => None,
    };
    let mut redirect_uris = RedirectUris::default();
    if let Some(raw) = member("redirect_uris") {
        let listed =
            serde_json::from_str::<Vec<String>>(raw).map_err(|_| ClientPageError::WrongType {
                member: "redirect_uris",
                expected: "an array of strings",
            })?;
        for (index, text) in listed.into_iter().enumerate() {
            if !is_usable_redirect_text(&text) {
                return Err(ClientPageError::InvalidRedirectUri(index + 1));
            }
            redirect_uris.add(text);
        }
    }
    Ok(ClientInfo {
        name,
        url,
        logo,
        redirect_uris: redirect_uris.0,
    })
}

/// An absolute http or https URL of at most [`MAX_URL_LEN`] bytes, as a JSON member gives it.
fn web_url(text: &str) -> Option<Url> {
    if text.len() > MAX_URL_LEN {
        return None;
    }
    Url::parse(text).ok().filter(is_web)
}

fn is_web(url: &Url) -> bool {
    matches!(url.scheme(), "http" | "https") && url.as_str().len() <= MAX_URL_LEN
}

/// Whether a published redirect URI can be compared and redirected to as written: absolute,
/// short enough, no fragment, no whitespace or control characters (which the URL parser would
/// quietly drop), and not a scheme a browser runs or embeds.
fn is_usable_redirect_text(text: &str) -> bool {
    text.len() <= MAX_URL_LEN
        && !text.contains('#')
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
        && Url::parse(text).is_ok_and(|url| is_usable_redirect(&url))
}

fn is_usable_redirect(url: &Url) -> bool {
    url.fragment().is_none()
        && url.as_str().len() <= MAX_URL_LEN
        && !UNSAFE_REDIRECT_SCHEMES.contains(&url.scheme())
}

/// Redirect URIs collected without repeats, up to [`MAX_REDIRECT_URIS`].
#[derive(Default)]
struct RedirectUris(Vec<String>);

impl RedirectUris {
    fn add(&mut self, uri: String) {
        if self.0.len() < MAX_REDIRECT_URIS && !self.0.contains(&uri) {
            self.0.push(uri);
        }
    }

    /// Adds `raw` from an HTML attribute or a `Link` header, resolved against `base`, if it is
    /// a usable redirect URL.
    fn add_resolved(&mut self, base: &Url, raw: &str) {
        if self.0.len() >= MAX_REDIRECT_URIS || raw.len() > MAX_URL_LEN {
            return;
        }
        if let Ok(url) = base.join(raw)
            && is_usable_redirect(&url)
        {
            self.add(url.into());
        }
    }
}

/// A name as shown to a person: whitespace runs become one space, the ends are trimmed, control
/// and bidirectional formatting characters go, and at most [`MAX_NAME_CHARS`] characters stay.
fn clean_name(raw: &str) -> Option<String> {
    let mut name = String::new();
    let mut count = 0;
    let mut space_pending = false;
    for c in raw.chars() {
        if c.is_whitespace() {
            space_pending = !name.is_empty();
            continue;
        }
        if c.is_control() || is_bidi_format(c) {
            continue;
        }
        if space_pending {
            if count + 1 >= MAX_NAME_CHARS {
                break;
            }
            name.push(' ');
            count += 1;
            space_pending = false;
        }
        if count >= MAX_NAME_CHARS {
            break;
        }
        name.push(c);
        count += 1;
    }
    (!name.is_empty()).then_some(name)
}

/// Characters that reorder or hide the text around them.
pub fn is_bidi_format(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            | '\u{feff}'
    )
}

// ---------------------------------------------------------------------------------------------
// The HTML page: h-app and rel=redirect_uri
// ---------------------------------------------------------------------------------------------

/// Reads an HTML page; also returns how many tags the scanner visited.
fn read_html(final_url: &Url, links: &[String], body: &[u8]) -> (ClientInfo, usize) {
    let text = String::from_utf8_lossy(body);
    let mut redirect_uris = RedirectUris::default();
    for target in crate::outbound::link_targets(links, "redirect_uri") {
        redirect_uris.add_resolved(final_url, target);
    }
    let mut reader = AppReader::new(final_url);
    let mut scanner = Scanner::new(&text);
    while let Some(token) = scanner.next_token() {
        match token {
            Token::Start(tag) => {
                if tag.is_one_of(&["link"])
                    && tag.rel.as_deref().is_some_and(|rel| {
                        rel.split_ascii_whitespace()
                            .any(|token| token.eq_ignore_ascii_case("redirect_uri"))
                    })
                    && let Some(href) = &tag.href
                {
                    redirect_uris.add_resolved(final_url, href);
                }
                reader.start(&tag);
            }
            Token::End(name) => reader.end(name),
            Token::Text(raw) => reader.text(raw),
        }
    }
    let mut info = reader.finish();
    info.redirect_uris = redirect_uris.0;
    (info, scanner.tags)
}

/// An open element followed by its name: it ends at the end tag that balances the start tags
/// of the same name seen inside it.
struct OpenElement {
    name: String,
    depth: usize,
}

impl OpenElement {
    fn new(name: &str) -> Self {
        OpenElement {
            name: name.to_ascii_lowercase(),
            depth: 1,
        }
    }

    fn started(&mut self, name: &str) {
        if self.name.eq_ignore_ascii_case(name) {
            self.depth += 1;
        }
    }

    /// Whether this end tag closes the element.
    fn ended(&mut self, name: &str) -> bool {
        if self.name.eq_ignore_ascii_case(name) {
            self.depth = self.depth.saturating_sub(1);
        }
        self.depth == 0
    }
}

/// The state of reading the first h-app from the tag stream.
struct AppReader<'u> {
    base: &'u Url,
    /// The h-app element while inside it.
    app: Option<OpenElement>,
    /// Whether the first h-app has been read to its end.
    app_done: bool,
    /// A microformat nested in the h-app, whose subtree holds its own properties.
    nested: Option<OpenElement>,
    /// The `p-name` element while gathering its text.
    name_element: Option<OpenElement>,
    name_seen: bool,
    name_text: String,
    name: Option<String>,
    url: Option<Url>,
    logo: Option<Url>,
    logo_alt: Option<String>,
}

impl<'u> AppReader<'u> {
    fn new(base: &'u Url) -> Self {
        AppReader {
            base,
            app: None,
            app_done: false,
            nested: None,
            name_element: None,
            name_seen: false,
            name_text: String::new(),
            name: None,
            url: None,
            logo: None,
            logo_alt: None,
        }
    }

    fn start(&mut self, tag: &Tag) {
        let void = tag.is_void();
        let Some(app) = &mut self.app else {
            if !self.app_done && tag.has_class(|class| class == "h-app" || class == "h-x-app") {
                if void {
                    self.app_done = true;
                } else {
                    self.app = Some(OpenElement::new(tag.name));
                }
            }
            return;
        };
        if !void {
            app.started(tag.name);
            for open in [&mut self.nested, &mut self.name_element]
                .into_iter()
                .flatten()
            {
                open.started(tag.name);
            }
        }
        if self.nested.is_some() {
            return;
        }
        if !self.name_seen && tag.has_class(|class| class == "p-name") {
            self.name_seen = true;
            if tag.is_one_of(&["img", "area"]) {
                self.name = tag.alt.as_deref().and_then(clean_name);
            } else if !void {
                self.name_element = Some(OpenElement::new(tag.name));
            }
        }
        if self.url.is_none() && tag.has_class(|class| class == "u-url") {
            let value = if tag.is_one_of(&["a", "area", "link"]) {
                tag.href.as_deref()
            } else {
                tag.src.as_deref().or(tag.value.as_deref())
            };
            self.url = value.and_then(|raw| self.resolve_web(raw));
        }
        if tag.has_class(|class| class == "u-logo") {
            if self.logo.is_none() {
                let value = tag.src.as_deref().or(tag.href.as_deref());
                self.logo = value.and_then(|raw| self.resolve_web(raw));
            }
            if self.logo_alt.is_none() && tag.is_one_of(&["img"]) {
                self.logo_alt = tag.alt.as_deref().and_then(clean_name);
            }
        }
        if !void && tag.has_class(is_root_class) {
            self.nested = Some(OpenElement::new(tag.name));
        }
    }

    fn end(&mut self, name: &str) {
        if self.app.is_none() {
            return;
        }
        if self
            .name_element
            .as_mut()
            .is_some_and(|open| open.ended(name))
        {
            self.finish_name();
        }
        if self.nested.as_mut().is_some_and(|open| open.ended(name)) {
            self.nested = None;
        }
        if self.app.as_mut().is_some_and(|app| app.ended(name)) {
            self.app = None;
            self.app_done = true;
            self.nested = None;
            if self.name_element.is_some() {
                self.finish_name();
            }
        }
    }

    fn text(&mut self, raw: &str) {
        if self.name_element.is_none() {
            return;
        }
        let room = MAX_NAME_TEXT.saturating_sub(self.name_text.len());
        let mut cut = raw.len().min(room);
        while !raw.is_char_boundary(cut) {
            cut -= 1;
        }
        self.name_text.push_str(&decode_references(&raw[..cut]));
    }

    fn finish_name(&mut self) {
        self.name_element = None;
        self.name = clean_name(&self.name_text);
    }

    fn finish(mut self) -> ClientInfo {
        if self.name_element.is_some() {
            self.finish_name();
        }
        ClientInfo {
            name: self.name.or(self.logo_alt),
            url: self.url,
            logo: self.logo,
            redirect_uris: Vec::new(),
        }
    }

    fn resolve_web(&self, raw: &str) -> Option<Url> {
        if raw.len() > MAX_URL_LEN {
            return None;
        }
        self.base.join(raw).ok().filter(is_web)
    }
}

/// Whether a class names a microformats root (`h-card`, `h-x-app`).
fn is_root_class(class: &str) -> bool {
    class.strip_prefix("h-").is_some_and(|rest| {
        rest.bytes().any(|b| b.is_ascii_lowercase())
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })
}

// ---------------------------------------------------------------------------------------------
// The tag scanner
// ---------------------------------------------------------------------------------------------

/// A start tag with the attributes this module reads (the first of each name, references
/// decoded).
#[derive(Default)]
struct Tag<'a> {
    name: &'a str,
    class: Option<String>,
    rel: Option<String>,
    href: Option<String>,
    src: Option<String>,
    value: Option<String>,
    alt: Option<String>,
}

impl Tag<'_> {
    fn is_one_of(&self, names: &[&str]) -> bool {
        names
            .iter()
            .any(|name| self.name.eq_ignore_ascii_case(name))
    }

    /// Elements that never have content or an end tag.
    fn is_void(&self) -> bool {
        self.is_one_of(&[
            "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
            "source", "track", "wbr", "keygen",
        ])
    }

    fn has_class(&self, wanted: impl Fn(&str) -> bool) -> bool {
        self.class
            .as_deref()
            .is_some_and(|class| class.split_ascii_whitespace().any(wanted))
    }

    fn keep(&mut self, name: &str, value: &str) {
        let is = |wanted: &str| name.eq_ignore_ascii_case(wanted);
        let slot = if is("class") {
            &mut self.class
        } else if is("rel") {
            &mut self.rel
        } else if is("href") {
            &mut self.href
        } else if is("src") {
            &mut self.src
        } else if is("value") {
            &mut self.value
        } else if is("alt") {
            &mut self.alt
        } else {
            return;
        };
        if slot.is_none() {
            *slot = Some(decode_references(value).into_owned());
        }
    }
}

enum Token<'a> {
    Start(Tag<'a>),
    End(&'a str),
    /// Text as written, character references not yet decoded.
    Text(&'a str),
}

/// Elements whose content is text up to their own end tag, never markup. The content of the
/// first two is skipped; that of the others is text.
const RAW_TEXT_ELEMENTS: [&str; 4] = ["script", "style", "title", "textarea"];

/// A forward-only scanner of HTML tags and text. Every call moves past what it returns, each
/// byte is looked at a bounded number of times, and it stops after [`MAX_TAGS`] tags.
struct Scanner<'a> {
    text: &'a str,
    at: usize,
    /// Tags visited so far.
    tags: usize,
    /// After the start tag of a raw text element, its name: its content comes next.
    raw_text: Option<&'a str>,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        Scanner {
            text,
            at: 0,
            tags: 0,
            raw_text: None,
        }
    }

    fn next_token(&mut self) -> Option<Token<'a>> {
        let bytes = self.text.as_bytes();
        loop {
            if self.tags >= MAX_TAGS || self.at >= bytes.len() {
                return None;
            }
            if let Some(element) = self.raw_text.take() {
                let start = self.at;
                self.at = self.raw_text_end(element);
                if ["title", "textarea"]
                    .iter()
                    .any(|name| element.eq_ignore_ascii_case(name))
                    && self.at > start
                {
                    return Some(Token::Text(&self.text[start..self.at]));
                }
                continue;
            }
            if bytes[self.at] != b'<' {
                let start = self.at;
                self.at = find_byte(bytes, b'<', start).unwrap_or(bytes.len());
                return Some(Token::Text(&self.text[start..self.at]));
            }
            match bytes.get(self.at + 1) {
                Some(b'!') if bytes[self.at..].starts_with(b"<!--") => {
                    self.at = comment_end(bytes, self.at + 2);
                }
                Some(b'!' | b'?') => self.skip_past_gt(),
                Some(b'/') => {
                    if bytes.get(self.at + 2).is_some_and(u8::is_ascii_alphabetic) {
                        let name_start = self.at + 2;
                        let name_end = self.tag_name_end(name_start);
                        let name = &self.text[name_start..name_end];
                        self.at = name_end;
                        // Attributes of an end tag mean nothing, but their quotes count.
                        let mut ignored = Tag::default();
                        if !self.attributes(&mut ignored) {
                            return None;
                        }
                        self.tags += 1;
                        return Some(Token::End(name));
                    }
                    self.skip_past_gt();
                }
                Some(b) if b.is_ascii_alphabetic() => {
                    let name_start = self.at + 1;
                    let name_end = self.tag_name_end(name_start);
                    let mut tag = Tag {
                        name: &self.text[name_start..name_end],
                        ..Tag::default()
                    };
                    self.at = name_end;
                    if !self.attributes(&mut tag) {
                        return None;
                    }
                    self.tags += 1;
                    if RAW_TEXT_ELEMENTS
                        .iter()
                        .any(|name| tag.name.eq_ignore_ascii_case(name))
                    {
                        self.raw_text = Some(tag.name);
                    }
                    return Some(Token::Start(tag));
                }
                _ => {
                    let start = self.at;
                    self.at = find_byte(bytes, b'<', start + 1).unwrap_or(bytes.len());
                    return Some(Token::Text(&self.text[start..self.at]));
                }
            }
        }
    }

    fn skip_past_gt(&mut self) {
        let bytes = self.text.as_bytes();
        self.at = find_byte(bytes, b'>', self.at).map_or(bytes.len(), |at| at + 1);
    }

    fn tag_name_end(&self, mut at: usize) -> usize {
        let bytes = self.text.as_bytes();
        while bytes
            .get(at)
            .is_some_and(|&b| !b.is_ascii_whitespace() && b != b'/' && b != b'>')
        {
            at += 1;
        }
        at
    }

    /// Reads attributes up to and past the closing `>`, keeping those `tag` wants. False when
    /// the text ends inside the tag (which HTML then drops).
    fn attributes(&mut self, tag: &mut Tag) -> bool {
        let bytes = self.text.as_bytes();
        let mut at = self.at;
        loop {
            while bytes
                .get(at)
                .is_some_and(|&b| b.is_ascii_whitespace() || b == b'/')
            {
                at += 1;
            }
            match bytes.get(at) {
                None => {
                    self.at = bytes.len();
                    return false;
                }
                Some(b'>') => {
                    self.at = at + 1;
                    return true;
                }
                Some(_) => {}
            }
            // A name is at least one byte, so every round moves on.
            let name_start = at;
            at += 1;
            while bytes
                .get(at)
                .is_some_and(|&b| !b.is_ascii_whitespace() && !matches!(b, b'/' | b'>' | b'='))
            {
                at += 1;
            }
            let name = &self.text[name_start..at];
            let mut after_name = at;
            while bytes.get(after_name).is_some_and(u8::is_ascii_whitespace) {
                after_name += 1;
            }
            if bytes.get(after_name) != Some(&b'=') {
                tag.keep(name, "");
                continue;
            }
            at = after_name + 1;
            while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
                at += 1;
            }
            let value = match bytes.get(at) {
                Some(&quote) if quote == b'"' || quote == b'\'' => {
                    let Some(close) = find_byte(bytes, quote, at + 1) else {
                        self.at = bytes.len();
                        return false;
                    };
                    let value = &self.text[at + 1..close];
                    at = close + 1;
                    value
                }
                _ => {
                    let start = at;
                    while bytes
                        .get(at)
                        .is_some_and(|&b| !b.is_ascii_whitespace() && b != b'>')
                    {
                        at += 1;
                    }
                    &self.text[start..at]
                }
            };
            tag.keep(name, value);
        }
    }

    /// Where the content of raw text element `element` ends: at its end tag (`</name` followed
    /// by a blank, `/` or `>`), or at the end of the text.
    fn raw_text_end(&self, element: &str) -> usize {
        let bytes = self.text.as_bytes();
        let mut from = self.at;
        while let Some(at) = find(bytes, b"</", from) {
            let name_end = at + 2 + element.len();
            let name_matches = bytes
                .get(at + 2..name_end)
                .is_some_and(|name| name.eq_ignore_ascii_case(element.as_bytes()));
            let ends = bytes
                .get(name_end)
                .is_some_and(|&b| b.is_ascii_whitespace() || b == b'/' || b == b'>');
            if name_matches && ends {
                return at;
            }
            from = at + 2;
        }
        bytes.len()
    }
}

/// Where a comment whose `--` starts at `from` ends: past the first `-->` or `--!>` (so that
/// `<!-->` and `<!--->` are empty comments), or at the end of the text.
fn comment_end(bytes: &[u8], mut from: usize) -> usize {
    while let Some(at) = find(bytes, b"--", from) {
        match bytes.get(at + 2) {
            Some(b'>') => return at + 3,
            Some(b'!') if bytes.get(at + 3) == Some(&b'>') => return at + 4,
            _ => from = at + 1,
        }
    }
    bytes.len()
}

fn find_byte(bytes: &[u8], byte: u8, from: usize) -> Option<usize> {
    bytes
        .get(from..)?
        .iter()
        .position(|&b| b == byte)
        .map(|at| from + at)
}

/// The first occurrence of `needle` at or after `from`. Linear: it only compares at the
/// occurrences of the needle's first byte, and the needles here are a few bytes long.
fn find(bytes: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = *needle.first()?;
    let mut at = from;
    while let Some(candidate) = find_byte(bytes, first, at) {
        if bytes[candidate..].starts_with(needle) {
            return Some(candidate);
        }
        at = candidate + 1;
    }
    None
}

/// Decodes the character references `&amp; &lt; &gt; &quot; &apos; &nbsp;` and numeric ones
/// (`&#39;`, `&#x27;`, the `;` optional). Others stay as written; a numeric reference to
/// nothing, a surrogate or NUL becomes U+FFFD.
fn decode_references(raw: &str) -> Cow<'_, str> {
    if !raw.contains('&') {
        return Cow::Borrowed(raw);
    }
    const NAMED: [(&str, char); 6] = [
        ("&amp;", '&'),
        ("&lt;", '<'),
        ("&gt;", '>'),
        ("&quot;", '"'),
        ("&apos;", '\''),
        ("&nbsp;", '\u{a0}'),
    ];
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let named = NAMED
            .iter()
            .find(|(name, _)| rest.starts_with(name))
            .map(|(name, c)| (*c, name.len()));
        match named.or_else(|| numeric_reference(rest)) {
            Some((c, length)) => {
                out.push(c);
                rest = &rest[length..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// A numeric character reference at the start of `text` (which starts with `&`): the character
/// and the length of the reference.
fn numeric_reference(text: &str) -> Option<(char, usize)> {
    let bytes = text.as_bytes();
    if bytes.get(1) != Some(&b'#') {
        return None;
    }
    let (radix, mut at) = match bytes.get(2) {
        Some(b'x' | b'X') => (16, 3),
        _ => (10, 2),
    };
    let digits_start = at;
    let mut code: u32 = 0;
    while let Some(digit) = bytes.get(at).and_then(|&b| char::from(b).to_digit(radix)) {
        code = code.saturating_mul(radix).saturating_add(digit);
        at += 1;
    }
    if at == digits_start {
        return None;
    }
    if bytes.get(at) == Some(&b';') {
        at += 1;
    }
    let c = char::from_u32(code)
        .filter(|c| *c != '\0')
        .unwrap_or('\u{fffd}');
    Some((c, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: &str = "https://app.example/";

    fn page_url() -> Url {
        Url::parse("https://app.example/about/page").expect("page URL")
    }

    fn json(body: &str) -> Result<ClientInfo, ClientPageError> {
        read_client_page(
            CLIENT,
            &page_url(),
            Some("application/json"),
            &[],
            body.as_bytes(),
        )
    }

    fn html(body: &str) -> ClientInfo {
        read_client_page(CLIENT, &page_url(), Some("text/html"), &[], body.as_bytes())
            .expect("HTML is read")
    }

    fn url(text: &str) -> Option<Url> {
        Some(Url::parse(text).expect("test URL"))
    }

    #[test]
    fn a_client_metadata_document_is_read() {
        let info = json(
            r#"{
                "client_id": "https://app.example/",
                "client_name": "  Example\n\tApp  ",
                "client_uri": "https://app.example/",
                "logo_uri": "https://cdn.example/logo.png",
                "redirect_uris": ["https://app.example/callback", "com.example.app:/cb",
                                  "https://app.example/callback"],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code"],
                "extra": {"nested": [1, 2]}
            }"#,
        )
        .expect("read");
        assert_eq!(
            info,
            ClientInfo {
                name: Some("Example App".into()),
                url: url("https://app.example/"),
                logo: url("https://cdn.example/logo.png"),
                redirect_uris: vec![
                    "https://app.example/callback".into(),
                    "com.example.app:/cb".into()
                ],
            }
        );
    }

    #[test]
    fn structured_json_types_with_parameters_are_json() {
        let body = br#"{"client_id": "https://app.example/"}"#;
        for content_type in [
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/client-metadata+json",
        ] {
            let info = read_client_page(CLIENT, &page_url(), Some(content_type), &[], body);
            assert_eq!(info, Ok(ClientInfo::default()), "{content_type}");
        }
    }

    #[test]
    fn a_document_for_another_client_id_is_refused() {
        // The same client_id after §3.4's canonicalization is the same client.
        assert!(json(r#"{"client_id": "https://APP.example"}"#).is_ok());
        assert_eq!(
            json(r#"{"client_id": "https://app.example/other"}"#),
            Err(ClientPageError::ClientIdMismatch)
        );
        assert_eq!(
            json(r#"{"client_id": "https://evil.example/"}"#),
            Err(ClientPageError::ClientIdMismatch)
        );
        assert_eq!(
            json(r#"{"client_name": "App"}"#),
            Err(ClientPageError::MissingClientId)
        );
    }

    #[test]
    fn a_client_uri_that_does_not_prefix_the_client_id_is_refused() {
        assert_eq!(
            json(r#"{"client_id": "https://app.example/", "client_uri": "https://evil.example/"}"#),
            Err(ClientPageError::ClientUriNotPrefix)
        );
        assert_eq!(
            json(r#"{"client_id": "https://app.example/", "client_uri": "https://app.example/x"}"#),
            Err(ClientPageError::ClientUriNotPrefix)
        );
        assert_eq!(
            json(r#"{"client_id": "https://app.example/", "client_uri": "/"}"#),
            Err(ClientPageError::InvalidUrl("client_uri"))
        );
        let lookalike = read_client_page(
            "https://app.example.evil/",
            &page_url(),
            Some("application/json"),
            &[],
            br#"{"client_id": "https://app.example.evil/", "client_uri": "https://app.example"}"#,
        );
        assert_eq!(lookalike, Err(ClientPageError::ClientUriNotPrefix));
        assert!(
            json(r#"{"client_id": "https://app.example/", "client_uri": "https://app.example"}"#)
                .is_ok()
        );
    }

    #[test]
    fn a_repeated_member_is_refused() {
        assert_eq!(
            json(r#"{"client_id": "https://evil.example/", "client_id": "https://app.example/"}"#),
            Err(ClientPageError::DuplicateMember(Some("client_id")))
        );
        assert_eq!(
            json(r#"{"client_id": "https://app.example/", "x": 1, "\u0078": 2}"#),
            Err(ClientPageError::DuplicateMember(None))
        );
        // Repeats inside other members are not this reader's business.
        assert!(json(r#"{"client_id": "https://app.example/", "x": {"a": 1, "a": 2}}"#).is_ok());
    }

    #[test]
    fn known_members_of_the_wrong_type_are_refused() {
        let cases = [
            (r#"{"client_id": 1}"#, "client_id"),
            (
                r#"{"client_id": "https://app.example/", "client_name": ["A"]}"#,
                "client_name",
            ),
            (
                r#"{"client_id": "https://app.example/", "client_uri": null}"#,
                "client_uri",
            ),
            (
                r#"{"client_id": "https://app.example/", "logo_uri": {}}"#,
                "logo_uri",
            ),
            (
                r#"{"client_id": "https://app.example/", "redirect_uris": "https://app.example/cb"}"#,
                "redirect_uris",
            ),
            (
                r#"{"client_id": "https://app.example/", "redirect_uris": ["https://a.example/", 2]}"#,
                "redirect_uris",
            ),
            (
                r#"{"client_id": "https://app.example/", "token_endpoint_auth_method": true}"#,
                "token_endpoint_auth_method",
            ),
        ];
        for (body, member) in cases {
            match json(body) {
                Err(ClientPageError::WrongType { member: named, .. }) => {
                    assert_eq!(named, member, "{body}")
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn an_unusable_redirect_uri_makes_the_document_invalid() {
        for (bad, number) in [
            ("https://app.example/cb#frag", 2),
            ("/relative/cb", 2),
            ("javascript:alert(1)", 2),
            ("data:text/html,x", 2),
            (" https://app.example/cb", 2),
        ] {
            let body = format!(
                r#"{{"client_id": "https://app.example/",
                    "redirect_uris": ["https://app.example/ok", {}]}}"#,
                serde_json::to_string(bad).expect("string")
            );
            assert_eq!(
                json(&body),
                Err(ClientPageError::InvalidRedirectUri(number)),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_logo_that_is_not_a_web_url_is_refused() {
        assert_eq!(
            json(r#"{"client_id": "https://app.example/", "logo_uri": "data:image/png,x"}"#),
            Err(ClientPageError::InvalidUrl("logo_uri"))
        );
    }

    #[test]
    fn client_secret_authentication_is_refused() {
        for method in [
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
        ] {
            let body = format!(
                r#"{{"client_id": "https://app.example/", "token_endpoint_auth_method": "{method}"}}"#
            );
            assert_eq!(
                json(&body),
                Err(ClientPageError::ConfidentialClient),
                "{method}"
            );
        }
    }

    #[test]
    fn json_that_is_broken_not_an_object_or_not_utf8_is_refused() {
        assert_eq!(
            json(r#"{"client_id": "#),
            Err(ClientPageError::MalformedJson)
        );
        assert_eq!(
            json(r#"{"client_id": "https://app.example/"} x"#),
            Err(ClientPageError::MalformedJson)
        );
        assert_eq!(json(r#"["client_id"]"#), Err(ClientPageError::NotObject));
        let latin1 = b"{\"client_id\": \"https://app.example/\", \"client_name\": \"Caf\xe9\"}";
        assert_eq!(
            read_client_page(CLIENT, &page_url(), Some("application/json"), &[], latin1),
            Err(ClientPageError::NotUtf8)
        );
    }

    #[test]
    fn error_messages_do_not_repeat_the_body() {
        let body = r#"{"client_id": "https://app.example/", "client_name": 7, "secret-words": 1}"#;
        let message = json(body).expect_err("refused").to_string();
        assert_eq!(message, "has a client_name that is not a string");
        let message = json(r#"{"secret-words": 1, "secret-words": 2}"#)
            .expect_err("refused")
            .to_string();
        assert!(!message.contains("secret"), "{message}");
    }

    #[test]
    fn an_h_app_gives_its_name_url_and_logo_with_relative_urls_resolved() {
        let info = html(
            r#"<!doctype html><html><head><title>Not the name</title></head><body>
            <div class="intro h-app">
              <img class="u-logo" src="../logo.png" alt="Logo text">
              <h1><A CLASS="p-name u-url" HREF="/">  Example
                 <b>App</b> </A></h1>
            </div></body></html>"#,
        );
        assert_eq!(info.name.as_deref(), Some("Example App"));
        assert_eq!(info.url, url("https://app.example/"));
        assert_eq!(info.logo, url("https://app.example/logo.png"));
        assert!(info.redirect_uris.is_empty());
    }

    #[test]
    fn an_h_x_app_is_read_and_a_logo_alt_is_the_name_without_a_p_name() {
        let info = html(
            r#"<section class=h-x-app><a class=u-url href=https://app.example/home>home</a>
               <img class=u-logo src=icon.svg alt="Icon App"></section>"#,
        );
        assert_eq!(info.name.as_deref(), Some("Icon App"));
        assert_eq!(info.url, url("https://app.example/home"));
        assert_eq!(info.logo, url("https://app.example/about/icon.svg"));
    }

    #[test]
    fn nested_elements_of_the_h_apps_tag_do_not_end_it_early() {
        let info = html(
            r#"<div class="h-app"><div><div>inner</div></div><br/>
               <div><span class="p-name">Nested <span>Deep</span> Name</span></div>
               <img class="u-logo" src="/l.png"></div>
               <div><img class="u-logo" src="/outside.png"></div>"#,
        );
        assert_eq!(info.name.as_deref(), Some("Nested Deep Name"));
        assert_eq!(info.logo, url("https://app.example/l.png"));
    }

    #[test]
    fn properties_after_the_h_app_ends_are_not_its_own() {
        let info = html(
            r#"<div class="h-app"><div></div></div><span class="p-name">Outside</span>
               <div class="h-app"><span class="p-name">Second app</span></div>"#,
        );
        assert_eq!(info, ClientInfo::default());
    }

    #[test]
    fn a_nested_microformat_keeps_its_properties() {
        let info = html(
            r#"<div class="h-app"><div class="p-author h-card"><span class="p-name">Author</span>
               <a class="u-url" href="https://author.example/">me</a></div>
               <span class="p-name">The App</span></div>"#,
        );
        assert_eq!(info.name.as_deref(), Some("The App"));
        assert_eq!(info.url, None);
    }

    #[test]
    fn comments_and_script_content_are_not_markup() {
        let info = html(
            r#"<!-- <div class="h-app"><span class="p-name">Comment</span></div> -->
               <script>var s = '<div class="h-app"><span class="p-name">Script</span></div>';
               </scriptx> still script </script>
               <style>.x::after { content: '<link rel="redirect_uri" href="/style">' }</style>
               <title><link rel=redirect_uri href=/title></title>
               <div class="h-app"><span class="p-name">Real<!-- hidden --> App</span></div>"#,
        );
        assert_eq!(info.name.as_deref(), Some("Real App"));
        assert!(info.redirect_uris.is_empty());
    }

    #[test]
    fn redirect_uris_come_from_link_elements_and_link_headers_not_from_anchors() {
        let headers = vec![
            r#"<https://app.example/other>; rel="prev", </from-header>; rel="redirect_uri""#
                .to_owned(),
            r#"</anchored>; rel=redirect_uri; anchor="/x", <https://app.example/cb>; rel="REDIRECT_URI me""#
                .to_owned(),
        ];
        let body = r#"<html><head>
            <link rel="redirect_uri" href="/cb">
            <link rel="stylesheet" href="/style.css">
            <LINK REL="me redirect_uri" HREF="callback?x=1&amp;y=2">
            <link rel="redirect_uri" href="/with#fragment">
            <link rel="redirect_uri" href="javascript:alert(1)">
            </head><body><a rel=redirect_uri href='https://other.example/cb'>cb</a>
            <p rel="redirect_uri" href="/not-a-link"></p></body></html>"#;
        let info = read_client_page(
            CLIENT,
            &page_url(),
            Some("text/html; charset=utf-8"),
            &headers,
            body.as_bytes(),
        )
        .expect("read");
        assert_eq!(
            info.redirect_uris,
            [
                "https://app.example/from-header",
                "https://app.example/cb",
                "https://app.example/about/callback?x=1&y=2",
            ]
        );
    }

    #[test]
    fn at_most_32_redirect_uris_are_kept() {
        let body: String = (0..40)
            .map(|n| format!("<link rel=redirect_uri href=/cb{n}>"))
            .collect();
        let info = html(&body);
        assert_eq!(info.redirect_uris.len(), MAX_REDIRECT_URIS);
        assert_eq!(info.redirect_uris[31], "https://app.example/cb31");
    }

    #[test]
    fn character_references_are_decoded_in_text_and_attributes() {
        let info = html(
            r#"<div class="h-app"><p class="p-name">Tom &amp; Jerry&#39;s &lt;App&gt; &#x263A;&#9731; &apos;&quot;&copy; &#0; &#x110000;</p>
               <a class="u-url" href="/?a=1&amp;b=2&#38;c=3">x</a></div>"#,
        );
        assert_eq!(
            info.name.as_deref(),
            Some("Tom & Jerry's <App> ☺☃ '\"&copy; \u{fffd} \u{fffd}")
        );
        assert_eq!(info.url, url("https://app.example/?a=1&b=2&c=3"));
    }

    #[test]
    fn a_name_is_cleaned_and_cut_to_100_characters() {
        let long = "é".repeat(150);
        let info = html(&format!(
            "<div class=h-app><span class=p-name>\u{202e}Evil\u{7}\u{200f} {long}</span></div>"
        ));
        let name = info.name.expect("name");
        assert!(name.starts_with("Evil éé"), "{name}");
        assert_eq!(name.chars().count(), MAX_NAME_CHARS);
    }

    #[test]
    fn urls_that_are_not_http_or_https_are_dropped() {
        let info = html(
            r#"<div class="h-app"><a class="u-url" href="javascript:alert(1)">x</a>
               <img class="u-logo" src="data:image/png;base64,AAAA"></div>"#,
        );
        assert_eq!(info.url, None);
        assert_eq!(info.logo, None);
    }

    #[test]
    fn an_html_page_without_an_h_app_gives_only_redirect_uris() {
        let body = b"  \n<p>Hello</p><link rel=redirect_uri href=/cb>";
        let info = read_client_page(CLIENT, &page_url(), None, &[], body).expect("sniffed HTML");
        assert_eq!(
            info,
            ClientInfo {
                redirect_uris: vec!["https://app.example/cb".into()],
                ..ClientInfo::default()
            }
        );
    }

    #[test]
    fn other_content_types_are_unsupported() {
        for (content_type, body) in [
            (Some("text/plain"), &b"<div class=h-app></div>"[..]),
            (Some("application/xml"), b"<x/>"),
            (Some("application/+json"), b"{}"),
            (None, br#"{"client_id": "https://app.example/"}"#),
            (None, b""),
        ] {
            assert_eq!(
                read_client_page(CLIENT, &page_url(), content_type, &[], body),
                Err(ClientPageError::UnsupportedType),
                "{content_type:?}"
            );
        }
    }

    #[test]
    fn a_body_over_512_kib_is_refused() {
        let body = vec![b' '; MAX_BODY + 1];
        assert_eq!(
            read_client_page(CLIENT, &page_url(), Some("text/html"), &[], &body),
            Err(ClientPageError::TooLarge)
        );
    }

    #[test]
    fn hostile_html_is_read_in_bounded_work() {
        // 100,000 unclosed tags inside an h-app whose name comes first: the scan stops at the
        // tag limit and keeps what it found.
        let body = format!(
            "<div class=h-app><b class=p-name>Kept</b>{}",
            "<b>".repeat(100_000)
        );
        let (info, tags) = read_html(&page_url(), &[], body.as_bytes());
        assert_eq!(tags, MAX_TAGS);
        assert_eq!(info.name.as_deref(), Some("Kept"));

        // Deep nesting of the h-app's own tag, never closed.
        let body = format!(
            "<div class=h-app><span class=p-name>Deep</span>{}",
            "<div>".repeat(80_000)
        );
        let (info, tags) = read_html(&page_url(), &[], body.as_bytes());
        assert_eq!(tags, MAX_TAGS);
        assert_eq!(info.name.as_deref(), Some("Deep"));

        // An unclosed p-name gathers a bounded amount of text.
        let body = format!("<div class=h-app><p class=p-name>{}", "xy".repeat(200_000));
        let (info, _) = read_html(&page_url(), &[], body.as_bytes());
        assert_eq!(info.name.map(|n| n.chars().count()), Some(MAX_NAME_CHARS));

        // Near-miss end tags in a script, an unclosed comment, quote and reference runs.
        for body in [
            format!("<script>{}", "</scrip".repeat(70_000)),
            format!("<!--{}", "--".repeat(200_000)),
            format!("<a href=\"{}", "&#".repeat(200_000)),
            format!("<a class=h-app><b class=p-name>{}", "&#x".repeat(150_000)),
            format!("<!--{}", "<!---->".repeat(70_000)),
            "<!---->".repeat(70_000),
            "<".repeat(MAX_BODY),
        ] {
            let (info, _) = read_html(&page_url(), &[], body.as_bytes());
            assert!(info.url.is_none() && info.redirect_uris.is_empty());
        }
    }

    #[test]
    fn link_headers_with_junk_are_read_without_failing() {
        let headers = vec![
            r#"junk, <a>; rel="x\", <d>; rel=redirect_uri", <b> bad; rel=redirect_uri, <c>;rel=redirect_uri;"#
                .to_owned(),
            "<unclosed; rel=redirect_uri".to_owned(),
        ];
        let found: Vec<&str> = crate::outbound::link_targets(&headers, "redirect_uri").collect();
        assert_eq!(found, ["c"]);
    }
}
