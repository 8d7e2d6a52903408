//! siteid: a single-owner identity node for a personal website. The library holds the whole
//! node; `main.rs` is a thin command-line front end over it.

pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
pub mod http;
pub mod inbox;
pub mod indieauth;
pub mod jose;
pub mod keys;
pub mod limits;
pub mod net;
pub mod outbound;
pub mod recovery;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod well_known_dir;
pub mod ws;
