//! Sessions: listing, revocation, sign-out, expiry, cookies with their CSRF rule, step-up and the audit endpoint.
