//! IndieAuth (the living standard, revision of 11 July 2024): the node as its owner's
//! authorization server. So far the URL rules every endpoint will apply (`urls`).

pub mod urls;
