//! Recovery shares: Shamir secret sharing of the owner's private scalar over GF(2^8)
//! (`shamir`), and the share format of docs/shares.md with the checks of rebuilding (`share`).

pub mod sets;
pub mod shamir;
pub mod share;

pub use share::{
    MAX_SHARES, MIN_THRESHOLD, RebuildError, Share, ShareError, ShareErrorCode, Split, rebuild_key,
    split_key,
};
