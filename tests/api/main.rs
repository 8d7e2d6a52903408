//! Black-box tests: each test starts a real node on 127.0.0.1 port 0 with its own temporary
//! data directory and talks to it over HTTP. `TEST_LOG=1` shows the nodes' logs.

mod agent;
mod audit;
mod bad_input;
mod claim;
pub mod credentials;
mod cross_fixtures;
mod enrollment;
mod helpers;
mod inbox;
mod indieauth;
mod key_formats;
pub mod node_key;
pub mod owner_key;
mod pages;
mod passkeys;
mod password_change;
mod process;
mod recovery;
mod retention;
mod sessions;
pub mod signin;
mod tidy;
mod totp;
mod unlock;
mod vectors;
mod websocket;
mod well_known;
