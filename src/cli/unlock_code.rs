//! The owner's ways back in from the server itself: `siteid unlock-code` makes a one-time unlock
//! code for a new device that cannot unlock while the network or node-wide throttle window is
//! full; `siteid totp-disable` turns two-step unlock off for an owner who lost both the
//! authenticator app and the recovery codes.

use std::io::Write;

use super::{Failure, NodeArgs, open_store};
use crate::audit::Actor;
use crate::auth::unlock_codes;
use crate::clock::{Clock, SystemClock, rfc3339};
use crate::store::{StoreError, owner};

/// Prints a fresh code on stdout and how long it lasts on stderr.
pub fn run(node: &NodeArgs) -> Result<(), Failure> {
    let (_, store) = open_store(node)?;
    let now = SystemClock.now();
    let minted = store.run_blocking(|c| {
        if !owner::exists(c)? {
            return Ok::<_, StoreError>(None);
        }
        unlock_codes::mint(c, None, &Actor::local(), now).map(Some)
    })?;
    store.close()?;
    let Some(minted) = minted else {
        return Err(Failure::new(
            "this node has no owner yet, so there is nothing to unlock",
        ));
    };
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{}", minted.code.display())
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::new(format!("cannot write the code: {e}")))?;
    eprintln!(
        "Type this code with your password on the new device. It works once, until {}.",
        rfc3339(minted.expires_at)
    );
    Ok(())
}

/// Turns TOTP off; says on stderr whether it was on.
pub fn totp_disable(node: &NodeArgs) -> Result<(), Failure> {
    let (_, store) = open_store(node)?;
    let now = SystemClock.now();
    let was_on = store.run_blocking(|c| crate::auth::totp::disable_on_the_server(c, now))?;
    store.close()?;
    if was_on {
        eprintln!(
            "Two-step unlock is off: a new device's password unlocks without a code. Turn it on \
             again at /account/totp with a new authenticator entry."
        );
    } else {
        eprintln!("Two-step unlock was not on; nothing changed.");
    }
    Ok(())
}
