//! The metadata of recovery share sets: checking what a client reports about a set it made,
//! recording it with an audit event, and listing earlier sets. The shares never get here.

use serde::Serialize;

use super::share::{self, MAX_SHARES, check_split_range};
use crate::audit::{self, Actor, AuditEvent};
use crate::store::recovery_sets::{self, RecoverySetRow};
use crate::store::{Store, StoreError, owner};

/// The longest label, in characters.
pub const MAX_LABEL_CHARS: usize = 64;
/// The most sets a node keeps (each is a few hundred bytes): a bound on storage that no owner
/// should ever reach.
pub const MAX_SETS: usize = 1000;

/// Why a set was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum SetError {
    #[error("{field} {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("a set with this set_id is already recorded")]
    Exists,
    #[error("this node already records {MAX_SETS} sets")]
    TooMany,
    #[error("the node has no owner yet")]
    NotClaimed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &'static str, message: impl Into<String>) -> SetError {
    SetError::Invalid {
        field,
        message: message.into(),
    }
}

/// A set's metadata as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecoverySet {
    pub set_id: String,
    pub kid: String,
    pub threshold: u8,
    pub shares: u8,
    pub labels: Vec<String>,
    pub created_at: i64,
    /// Whether the set holds a key that is no longer the owner key (replaced by a rotation):
    /// its shares rebuild a key that signs nothing in, so it is void.
    pub void: bool,
}

/// A set reported by a client, checked.
#[derive(Debug, Clone)]
pub struct NewSet {
    set_id: String,
    threshold: u8,
    shares: u8,
    labels: Vec<String>,
}

/// Checks a reported set: an 8-hex-digit id, 2 <= threshold <= shares <= 16, and one label
/// per share of 1 to 64 characters without control characters or surrounding spaces.
pub fn check(
    set_id: &str,
    threshold: u8,
    shares: u8,
    labels: Vec<String>,
) -> Result<NewSet, SetError> {
    let id = share::parse_set_id(set_id)
        .ok_or_else(|| invalid("set_id", "must be 8 hexadecimal digits"))?;
    if !(2..=MAX_SHARES).contains(&shares) {
        return Err(invalid("shares", format!("must be 2 to {MAX_SHARES}")));
    }
    if check_split_range(threshold, shares).is_err() {
        return Err(invalid(
            "threshold",
            "must be at least 2 and at most shares",
        ));
    }
    if labels.len() != usize::from(shares) {
        return Err(invalid(
            "labels",
            format!("must hold one label per share ({shares})"),
        ));
    }
    for (i, label) in labels.iter().enumerate() {
        if let Some(problem) = label_problem(label) {
            return Err(invalid("labels", format!("entry {} {problem}", i + 1)));
        }
    }
    Ok(NewSet {
        set_id: share::hex(&id),
        threshold,
        shares,
        labels,
    })
}

/// What is wrong with a label a person gave (a friend's name, a device's name), if anything:
/// it must have 1 to 64 characters, no control or text-direction characters, and no spaces
/// around it. The message completes "the label ...".
pub fn label_problem(label: &str) -> Option<String> {
    let chars = label.chars().count();
    if chars == 0 || chars > MAX_LABEL_CHARS {
        return Some(format!("must have 1 to {MAX_LABEL_CHARS} characters"));
    }
    if label
        .chars()
        .any(|c| c.is_control() || is_bidi_control(c) || is_invisible(c))
        || label.trim() != label
    {
        return Some(
            "must not contain control, text-direction or invisible characters, nor start or end \
             with a space"
                .into(),
        );
    }
    None
}

/// Characters that show nothing (zero-width spaces, word joiners, the byte-order mark, soft
/// hyphens, Hangul fillers) or break lines, with which a label could pass for another or hide
/// a part of itself. The zero-width joiner stays: emoji sequences need it.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}'
            | '\u{034f}'
            | '\u{115f}'
            | '\u{1160}'
            | '\u{180e}'
            | '\u{200b}'
            | '\u{200c}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{2060}'..='\u{2064}' | '\u{3164}' | '\u{feff}' | '\u{ffa0}'
    )
}

/// Characters that reorder text on screen (Trojan Source, CVE-2021-42574), which a label has
/// no use for.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Records a checked set for the owner's current key, with its audit event, in one
/// transaction.
pub fn record(
    connection: &mut rusqlite::Connection,
    set: NewSet,
    actor: &Actor,
    now: i64,
) -> Result<RecoverySet, SetError> {
    let tx = connection.transaction().map_err(StoreError::from)?;
    let owner = owner::find(&tx)?.ok_or(SetError::NotClaimed)?;
    if recovery_sets::count(&tx)? >= MAX_SETS {
        return Err(SetError::TooMany);
    }
    let labels_json =
        serde_json::to_string(&set.labels).map_err(|e| invalid("labels", e.to_string()))?;
    let row = RecoverySetRow {
        set_id: set.set_id.clone(),
        kid: owner.kid.clone(),
        threshold: set.threshold,
        shares: set.shares,
        labels_json,
        created_at: now,
    };
    if !recovery_sets::insert(&tx, &row)? {
        return Err(SetError::Exists);
    }
    let event = AuditEvent::RecoverySetCreated {
        set_id: set.set_id.clone(),
        kid: owner.kid.clone(),
        threshold: set.threshold,
        shares: set.shares,
    };
    audit::append(&tx, now, &event, actor)?;
    tx.commit().map_err(StoreError::from)?;
    Ok(RecoverySet {
        set_id: set.set_id,
        kid: owner.kid,
        threshold: set.threshold,
        shares: set.shares,
        labels: set.labels,
        created_at: now,
        void: false,
    })
}

/// Every recorded set, newest first.
pub async fn list(store: &Store) -> Result<Vec<RecoverySet>, StoreError> {
    let (rows, owner_kid) = store
        .run(|c| {
            let owner_kid = crate::store::owner::find(c)?.map(|o| o.kid);
            Ok::<_, StoreError>((recovery_sets::list(c)?, owner_kid))
        })
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| RecoverySet {
            void: owner_kid.as_deref() != Some(row.kid.as_str()),
            labels: serde_json::from_str(&row.labels_json).unwrap_or_default(),
            set_id: row.set_id,
            kid: row.kid,
            threshold: row.threshold,
            shares: row.shares,
            created_at: row.created_at,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_with_invisible_or_direction_characters_are_refused() {
        assert_eq!(label_problem("Phone"), None);
        assert_eq!(label_problem("Family \u{1f468}\u{200d}\u{1f469}"), None);
        for bad in [
            "Pho\u{200b}ne",
            "\u{feff}Phone",
            "Phone\u{2028}Code: 123 456",
            "Phone\u{00ad}",
            "\u{3164}",
            "Phone\u{202e}enohP",
            "Phone\n",
            " Phone",
        ] {
            assert!(label_problem(bad).is_some(), "{bad:?}");
        }
    }
}
