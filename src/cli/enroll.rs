//! `siteid enroll`: pairing from the server itself. Opens or closes the enrollment window,
//! sets the enrollment mode, and prints the settings in force.

use clap::Args;

use super::{Failure, NodeArgs, open_store};
use crate::audit::Actor;
use crate::auth::enrollment::{self, EnrollmentState, MAX_WINDOW_MINUTES, Mode};
use crate::clock::{Clock, SystemClock, rfc3339};
use crate::store::{Store, owner};

#[derive(Debug, Clone, Args)]
pub struct EnrollArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Open the enrollment window for this many minutes (1 to 60): new devices may unlock
    /// with the password, and new credentials are accepted, until it closes.
    #[arg(long, conflicts_with = "close")]
    pub minutes: Option<u32>,
    /// Close the enrollment window now.
    #[arg(long)]
    pub close: bool,
    /// Set the enrollment mode: open, approval or window.
    #[arg(long)]
    pub mode: Option<String>,
}

/// Applies what the flags ask and prints the settings in force.
pub fn run(args: &EnrollArgs) -> Result<(), Failure> {
    let (settings, store) = open_store(&args.node)?;
    // What the running node was started with wins over this command's own configuration.
    let served = store
        .run_blocking(|c| crate::store::meta::get_text(c, crate::store::meta::SERVED_ENROLLMENT))?;
    let configured = served
        .as_deref()
        .and_then(Mode::parse)
        .unwrap_or(settings.enrollment);
    let mode = args
        .mode
        .as_deref()
        .map(|text| {
            Mode::parse(text).ok_or_else(|| {
                Failure::new(format!(
                    "--mode {text:?} is not one of open, approval, window"
                ))
            })
        })
        .transpose()?;
    if let Some(minutes) = args.minutes
        && !(1..=MAX_WINDOW_MINUTES).contains(&minutes)
    {
        return Err(Failure::new(format!(
            "--minutes must be from 1 to {MAX_WINDOW_MINUTES}"
        )));
    }
    if !store.run_blocking(|c| owner::exists(c))? {
        return Err(Failure::new("this node has no owner yet"));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| Failure::new(format!("cannot start: {e}")))?;
    let now = SystemClock.now();
    let actor = Actor::local();
    let state = runtime.block_on(async {
        apply(&store, configured, mode, args, &actor, now)
            .await
            .map_err(Failure::new)
    })?;
    store.close()?;
    print_state(&state);
    Ok(())
}

async fn apply(
    store: &Store,
    configured: Mode,
    mode: Option<Mode>,
    args: &EnrollArgs,
    actor: &Actor,
    now: i64,
) -> Result<EnrollmentState, String> {
    let enrollment = enrollment::Enrollment::new(configured);
    if let Some(mode) = mode {
        enrollment
            .set_mode(store, mode, actor, now)
            .await
            .map_err(|e| e.to_string())?;
    }
    if args.close {
        enrollment
            .close_window(store, actor, now)
            .await
            .map_err(|e| e.to_string())?;
    }
    if let Some(minutes) = args.minutes {
        enrollment
            .open_window(store, minutes, actor, now)
            .await
            .map_err(|e| e.to_string())?;
    }
    enrollment
        .state(store, now)
        .await
        .map_err(|e| e.to_string())
}

fn print_state(state: &EnrollmentState) {
    println!("mode: {}", state.mode.as_str());
    match state.window {
        Some(window) => println!("window: open until {}", rfc3339(window.closes_at)),
        None => println!("window: closed"),
    }
}
