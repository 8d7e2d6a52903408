//! The owner's public profile: name, photo, email, a note and rel=me links, set on /account
//! (or in config.toml until then). The home page's h-card shows it and IndieAuth clients
//! receive it with the `profile` scope (`email` only with the `email` scope).

use std::sync::{Arc, PoisonError, RwLock};

use serde::{Deserialize, Serialize};

use crate::audit::{self, Actor, AuditEvent};
use crate::config::{Profile as ConfigProfile, ProfileLink};
use crate::store::indieauth as rows;
use crate::store::{Store, StoreError};

/// The longest name, note or link name, in characters.
pub const MAX_TEXT_CHARS: usize = 200;
/// The longest URL or email address, in bytes.
pub const MAX_URL_LEN: usize = 2048;
/// The most rel=me links.
pub const MAX_LINKS: usize = 20;

/// One rel=me link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub name: String,
    pub url: String,
}

/// The owner's profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnerProfile {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub photo: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub links: Vec<Link>,
}

impl OwnerProfile {
    /// The profile config.toml sets.
    pub fn from_config(config: &ConfigProfile) -> Self {
        OwnerProfile {
            name: config.name.clone(),
            photo: None,
            email: None,
            note: config.note.clone(),
            links: config
                .links
                .iter()
                .map(|ProfileLink { name, url }| Link {
                    name: name.clone(),
                    url: url.clone(),
                })
                .collect(),
        }
    }

    /// Checks every field and drops empty ones; the message names the field and completes
    /// "... is not valid: ...".
    pub fn checked(self) -> Result<OwnerProfile, (&'static str, String)> {
        let text = |field: &'static str, value: Option<String>| -> Result<_, _> {
            match value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
                Some(v) if v.chars().count() > MAX_TEXT_CHARS => Err((
                    field,
                    format!("it is longer than {MAX_TEXT_CHARS} characters"),
                )),
                Some(v)
                    if v.chars()
                        .any(|c| c.is_control() || super::client_page::is_bidi_format(c)) =>
                {
                    Err((
                        field,
                        "it holds control or text-direction characters".into(),
                    ))
                }
                other => Ok(other),
            }
        };
        let name = text("name", self.name)?;
        let note = text("note", self.note)?;
        let photo = match self
            .photo
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
        {
            Some(url) => Some(check_web_url(&url).map_err(|e| ("photo", e))?),
            None => None,
        };
        let email = match self
            .email
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
        {
            Some(email) => Some(check_email(&email).map_err(|e| ("email", e))?),
            None => None,
        };
        if self.links.len() > MAX_LINKS {
            return Err(("links", format!("there are more than {MAX_LINKS}")));
        }
        let mut links = Vec::with_capacity(self.links.len());
        for link in self.links {
            let url = check_web_url(link.url.trim()).map_err(|e| ("links", e))?;
            let name = text("links", Some(link.name))?.unwrap_or_else(|| url.clone());
            links.push(Link { name, url });
        }
        Ok(OwnerProfile {
            name,
            photo,
            email,
            note,
            links,
        })
    }

    /// The names of the fields that differ from `other`.
    pub fn changed_fields(&self, other: &OwnerProfile) -> Vec<&'static str> {
        let mut fields = Vec::new();
        if self.name != other.name {
            fields.push("name");
        }
        if self.photo != other.photo {
            fields.push("photo");
        }
        if self.email != other.email {
            fields.push("email");
        }
        if self.note != other.note {
            fields.push("note");
        }
        if self.links != other.links {
            fields.push("links");
        }
        fields
    }
}

/// An absolute http(s) URL without credentials.
fn check_web_url(text: &str) -> Result<String, String> {
    if text.len() > MAX_URL_LEN {
        return Err(format!("it is longer than {MAX_URL_LEN} bytes"));
    }
    let url = url::Url::parse(text).map_err(|_| "it is not an absolute URL".to_owned())?;
    if !matches!(url.scheme(), "http" | "https") || !super::urls::has_sound_host(&url) {
        return Err("it must be an http or https URL with a DNS name or address as host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("it must not hold a user name or password".into());
    }
    Ok(url.to_string())
}

/// An email address: one `@` with something on each side, no spaces or controls.
fn check_email(text: &str) -> Result<String, String> {
    let valid = text.len() <= 254
        && text.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        })
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>\"".contains(c));
    if valid {
        Ok(text.to_owned())
    } else {
        Err("it is not an email address".into())
    }
}

/// The current profile, shared by every request; replaced when the owner changes it.
#[derive(Debug)]
pub struct ProfileCell(RwLock<Arc<OwnerProfile>>);

impl ProfileCell {
    /// The profile stored in the database, else the one config.toml sets.
    pub async fn load(store: &Store, config: &ConfigProfile) -> Result<Self, StoreError> {
        let stored = store.run(|c| rows::profile(c)).await?;
        let profile = stored
            .and_then(|document| serde_json::from_str::<OwnerProfile>(&document).ok())
            .unwrap_or_else(|| OwnerProfile::from_config(config));
        Ok(ProfileCell(RwLock::new(Arc::new(profile))))
    }

    /// The current profile.
    pub fn get(&self) -> Arc<OwnerProfile> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stores a checked profile, audited as `profile.changed`.
    pub async fn set(
        &self,
        store: &Store,
        profile: OwnerProfile,
        actor: Actor,
        now: i64,
    ) -> Result<(), StoreError> {
        let fields = profile.changed_fields(&self.get());
        let document = serde_json::to_string(&profile)
            .map_err(|e| StoreError::Task(format!("serialising the profile failed: {e}")))?;
        store
            .run(move |c| {
                let tx = c.transaction()?;
                rows::set_profile(&tx, &document, now)?;
                audit::append(&tx, now, &AuditEvent::ProfileChanged { fields }, &actor)?;
                tx.commit()?;
                Ok::<_, StoreError>(())
            })
            .await?;
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(profile);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_is_checked_field_by_field() {
        let good = OwnerProfile {
            name: Some("  Ada  ".into()),
            photo: Some("https://ada.example/me.jpg".into()),
            email: Some("ada@ada.example".into()),
            note: Some(String::new()),
            links: vec![Link {
                name: "Code".into(),
                url: "https://git.example/ada".into(),
            }],
        }
        .checked()
        .expect("valid");
        assert_eq!(good.name.as_deref(), Some("Ada"));
        assert_eq!(good.note, None);
        for (bad, field) in [
            (
                OwnerProfile {
                    photo: Some("javascript:alert(1)".into()),
                    ..OwnerProfile::default()
                },
                "photo",
            ),
            (
                OwnerProfile {
                    photo: Some("https://x;script-src/p.png".into()),
                    ..OwnerProfile::default()
                },
                "photo",
            ),
            (
                OwnerProfile {
                    email: Some("not an email".into()),
                    ..OwnerProfile::default()
                },
                "email",
            ),
            (
                OwnerProfile {
                    name: Some("Ada\u{202e}txt.exe".into()),
                    ..OwnerProfile::default()
                },
                "name",
            ),
            (
                OwnerProfile {
                    name: Some("x".repeat(201)),
                    ..OwnerProfile::default()
                },
                "name",
            ),
            (
                OwnerProfile {
                    links: vec![Link {
                        name: "a".into(),
                        url: "https://u:p@a.example/".into(),
                    }],
                    ..OwnerProfile::default()
                },
                "links",
            ),
        ] {
            assert_eq!(bad.checked().expect_err("invalid").0, field);
        }
    }
}
