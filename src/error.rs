//! The one place that turns errors into HTTP answers: RFC 9457 `application/problem+json`
//! with a stable problem type per cause. 4xx answers say what was wrong; 5xx answers are
//! opaque apart from a request id that also appears in the log.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::auth::claim::ClaimError;
use crate::auth::credential_changes::CredentialError;
use crate::auth::credential_changes::MAX_LIVE_CREDENTIALS;
use crate::auth::login::LoginError;
use crate::auth::rotation::RotationError;
use crate::auth::throttle::Scope;
use crate::auth::totp::TotpChangeError;
use crate::auth::unlock::UnlockError;
use crate::recovery::sets::{MAX_SETS, SetError};
use crate::telemetry;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";
/// Problem types are URNs under this prefix, followed by the problem's slug.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:siteid:problem:";

/// An RFC 9457 problem details object, plus the headers some problems carry. Boxed, so that
/// `Result<_, Problem>` stays small on the success path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem(Box<ProblemDetails>);

/// The members of a [`Problem`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProblemDetails {
    pub status: StatusCode,
    pub slug: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub field: Option<String>,
    pub retry_after: Option<i64>,
    pub request_id: Option<String>,
    /// The methods a resource serves, for the `Allow` header of a 405.
    pub allow: Option<&'static str>,
    /// Which throttle window is full (`client`, `network`, `node`), on 429 answers.
    pub scope: Option<&'static str>,
}

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    problem_type: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
}

impl Problem {
    /// A problem with a status, a slug naming its type, a fixed title and a specific detail.
    pub fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Problem(Box::new(ProblemDetails {
            status,
            slug,
            title,
            detail: detail.into(),
            field: None,
            retry_after: None,
            request_id: None,
            allow: None,
            scope: None,
        }))
    }

    /// 422: a request member has a value the node cannot accept.
    pub fn invalid_field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        let mut problem = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
            "A request member is not valid",
            detail,
        );
        problem.field = Some(field.into());
        problem
    }

    /// 404 for a path the node does not serve.
    pub fn not_found() -> Self {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            "There is nothing at this address.",
        )
    }

    /// 405 for a method a resource does not support; `allow` lists those it does.
    pub fn method_not_allowed(allow: &'static str) -> Self {
        let mut problem = Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
            format!("This address does not support the request method; it allows {allow}."),
        );
        problem.allow = Some(allow);
        problem
    }

    /// 404 before the node has an owner.
    pub fn not_claimed() -> Self {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not-claimed",
            "The node has no owner yet",
            "This node has not been claimed; its owner finds the claim link in the server log \
             or with `siteid claim-url`.",
        )
    }

    /// 503 while the owner record fails its check: nothing the owner key vouches for is served.
    pub fn owner_record_invalid() -> Self {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "owner-record-invalid",
            "The owner record fails its check",
            "The stored owner key, wrapped key or key history does not carry the owner key's \
             valid signature, so the node serves none of it. Its operator finds the reason in \
             the log.",
        )
    }

    /// 503 from the health check when the node runs but cannot serve its owner.
    pub fn degraded() -> Self {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "degraded",
            "The node is degraded",
            "The node is running, but its owner record fails its check, so it serves no key and \
             accepts no sign-in. Its operator finds the reason in the log.",
        )
    }

    /// 403: the credential may not be used from the client's address.
    pub fn network_not_allowed() -> Self {
        Problem::new(
            StatusCode::FORBIDDEN,
            "network-not-allowed",
            "Not from this network",
            "This credential may be used only from the networks it was given; this request \
             comes from outside them.",
        )
    }

    /// 403: the session's credential lacks the capability the operation needs.
    pub fn insufficient_capability(capability: &str) -> Self {
        Problem::new(
            StatusCode::FORBIDDEN,
            "insufficient-capability",
            "Not allowed for this credential",
            format!(
                "This operation needs the `{capability}` capability, which the credential of this session does not have."
            ),
        )
    }

    /// 500: logs the cause with the request id and tells the client only the id.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        let request_id = telemetry::current_request_id();
        tracing::error!(request_id = request_id.as_deref().unwrap_or("-"), error = %cause, "internal error");
        let mut problem = Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
            "The node could not complete the request; its log has the details under this request id.",
        );
        problem.request_id = request_id;
        problem
    }

    fn body(&self) -> String {
        let body = ProblemBody {
            problem_type: format!("{PROBLEM_TYPE_PREFIX}{}", self.slug),
            title: self.title,
            status: self.status.as_u16(),
            detail: &self.detail,
            field: self.field.as_deref(),
            retry_after: self.retry_after,
            request_id: self.request_id.as_deref(),
            scope: self.scope,
        };
        serde_json::to_string(&body).unwrap_or_default()
    }
}

impl std::ops::Deref for Problem {
    type Target = ProblemDetails;

    fn deref(&self) -> &ProblemDetails {
        &self.0
    }
}

impl std::ops::DerefMut for Problem {
    fn deref_mut(&mut self) -> &mut ProblemDetails {
        &mut self.0
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.slug, self.detail)
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response
            .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)))
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if let Some(allow) = self.allow {
            response.insert_header((header::ALLOW, allow));
        }
        response.body(self.body())
    }
}

impl From<SetError> for Problem {
    fn from(error: SetError) -> Self {
        match error {
            SetError::Invalid { field, message } => {
                Problem::invalid_field(field, format!("{field} {message}."))
            }
            SetError::Exists => Problem::new(
                StatusCode::CONFLICT,
                "recovery-set-exists",
                "The set is already recorded",
                "A recovery set with this set_id is already recorded; make a new split.",
            ),
            SetError::TooMany => Problem::new(
                StatusCode::CONFLICT,
                "too-many-recovery-sets",
                "Too many recovery sets",
                format!("This node records at most {MAX_SETS} recovery sets."),
            ),
            SetError::NotClaimed => Problem::not_claimed(),
            SetError::Store(error) => Problem::internal(&error),
        }
    }
}

impl From<ClaimError> for Problem {
    fn from(error: ClaimError) -> Self {
        match error {
            ClaimError::AlreadyClaimed => Problem::new(
                StatusCode::FORBIDDEN,
                "already-claimed",
                "The node already has an owner",
                "This node has been claimed; a node has exactly one owner.",
            ),
            ClaimError::WrongToken => Problem::new(
                StatusCode::UNAUTHORIZED,
                "invalid-claim-token",
                "The claim token is not valid",
                "The claim token is wrong or has been used. The current setup link is printed in \
                 the server log and by `siteid claim-url`.",
            ),
            ClaimError::Invalid { field, message } => {
                Problem::invalid_field(field, format!("{field} {message}"))
            }
            ClaimError::Internal(cause) => Problem::internal(&cause),
        }
    }
}

impl From<CredentialError> for Problem {
    fn from(error: CredentialError) -> Self {
        match error {
            CredentialError::NotClaimed => Problem::not_claimed(),
            CredentialError::Invalid { field, message } => {
                Problem::invalid_field(field, format!("{field} {message}."))
            }
            CredentialError::Exists(what) => Problem::new(
                StatusCode::CONFLICT,
                "credential-exists",
                "The credential is already registered",
                format!(
                    "A credential with this {what} is, or was, registered; a revoked key stays \
                     refused. Make a new key (or a new id)."
                ),
            ),
            CredentialError::NotFound => Problem::new(
                StatusCode::NOT_FOUND,
                "credential-not-found",
                "No such credential",
                "There is no live credential with this id.",
            ),
            CredentialError::OwnerCredential => Problem::new(
                StatusCode::CONFLICT,
                "owner-credential",
                "The owner key cannot be changed here",
                "The owner key is the root credential: it cannot be revoked, reset or changed \
                 through the credentials API.",
            ),
            CredentialError::RequestAnswered => enrollment_request_closed(),
            CredentialError::EnrollmentClosed(gate) => gate.into(),
            CredentialError::TooMany => Problem::new(
                StatusCode::CONFLICT,
                "too-many-credentials",
                "The node holds as many credentials as it can",
                format!(
                    "A node keeps at most {MAX_LIVE_CREDENTIALS} live credentials; revoke one \
                     you no longer use first."
                ),
            ),
            CredentialError::OwnerKeyChanged => Problem::new(
                StatusCode::CONFLICT,
                "owner-key-changed",
                "The owner key changed meanwhile",
                "The owner key was replaced while this change was checked; its binding is by the \
                 old key. Sign in again and bind the credential with the new key.",
            ),
            CredentialError::Internal(cause) => Problem::internal(&cause),
        }
    }
}

impl From<RotationError> for Problem {
    fn from(error: RotationError) -> Self {
        match error {
            RotationError::NotClaimed => Problem::not_claimed(),
            RotationError::NoHistory => Problem::new(
                StatusCode::CONFLICT,
                "no-key-history",
                "The owner key has no history yet",
                "This node was claimed before key histories, so a rotation has no statement to \
                 follow. Change the password once from the browser (it signs the history), \
                 then rotate.",
            ),
            RotationError::Invalid { field, message } => {
                Problem::invalid_field(field, format!("{field} {message}."))
            }
            RotationError::Conflict => Problem::new(
                StatusCode::CONFLICT,
                "rotation-conflict",
                "The owner key or credentials changed meanwhile",
                "The owner key, its history or a credential changed while the rotation was \
                 checked. Load the credentials again and make a new rotation.",
            ),
            RotationError::WrongVerifier => Problem::from(UnlockError::WrongVerifier),
            RotationError::Throttled { retry_after, scope } => {
                Problem::from(UnlockError::Throttled { retry_after, scope })
            }
            RotationError::RecordInvalid => Problem::owner_record_invalid(),
            RotationError::Internal(cause) => Problem::internal(&cause),
        }
    }
}

impl From<UnlockError> for Problem {
    fn from(error: UnlockError) -> Self {
        match error {
            UnlockError::NotClaimed => Problem::not_claimed(),
            UnlockError::Invalid { field, message } => {
                Problem::invalid_field(field, format!("{field} {message}."))
            }
            UnlockError::WrongVerifier => Problem::new(
                StatusCode::UNAUTHORIZED,
                "wrong-unlock-verifier",
                "The password is wrong",
                "The unlock verifier does not match: the password is wrong.",
            ),
            UnlockError::RecordInvalid => Problem::owner_record_invalid(),
            UnlockError::OwnerKeyChanged => Problem::new(
                StatusCode::CONFLICT,
                "owner-key-changed",
                "The owner key changed meanwhile",
                "The owner key was replaced while this change was checked; its proof and wrapped \
                 key are for the old key. Sign in again and make the change with the new key.",
            ),
            UnlockError::WrongCode => Problem::new(
                StatusCode::UNAUTHORIZED,
                "wrong-unlock-code",
                "The unlock code is not valid",
                "The unlock code is wrong, was used already or has expired. Make a new one on a \
                 signed-in device (Account, one-time unlock code) or with `siteid unlock-code`.",
            ),
            UnlockError::BothFactors => Problem::new(
                StatusCode::BAD_REQUEST,
                "ambiguous-second-factor",
                "Two second factors sent",
                "Send either totp (the 6 digits of the authenticator app) or recovery_code, not \
                 both.",
            ),
            UnlockError::TotpRequired => Problem::new(
                StatusCode::UNAUTHORIZED,
                "totp-required",
                "A code from the authenticator app is needed",
                "The password is right, and this node also needs the 6-digit code of its \
                 authenticator app (totp) or one of its recovery codes (recovery_code). Send the \
                 request again with one of them.",
            ),
            UnlockError::TotpInvalid => Problem::totp_invalid(),
            UnlockError::TotpUnavailable => Problem::totp_unavailable(),
            UnlockError::Throttled { retry_after, scope } => {
                let detail = match scope {
                    Scope::Client => format!(
                        "Too many wrong passwords from this address. Try again in {retry_after} seconds."
                    ),
                    Scope::Network => format!(
                        "Too many wrong passwords from this network today. Try again in \
                         {retry_after} seconds, or unlock with a one-time unlock code."
                    ),
                    Scope::Node => format!(
                        "Too many wrong passwords on this node today; password unlock is paused \
                         for everyone. Try again in {retry_after} seconds, or unlock with a \
                         one-time unlock code from a signed-in device or `siteid unlock-code`."
                    ),
                };
                let mut problem = Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too-many-attempts",
                    "Too many failed attempts",
                    detail,
                );
                problem.retry_after = Some(retry_after);
                problem.scope = Some(scope.as_str());
                problem
            }
            UnlockError::Internal(cause) => Problem::internal(&cause),
        }
    }
}

impl From<crate::auth::passkeys::PasskeyError> for Problem {
    fn from(error: crate::auth::passkeys::PasskeyError) -> Self {
        use crate::auth::passkeys::PasskeyError;
        match error {
            PasskeyError::Unavailable => Problem::new(
                StatusCode::NOT_FOUND,
                "passkeys-unavailable",
                "This node cannot use passkeys",
                "Passkeys need a public URL whose host is a domain name (browsers refuse IP \
                 addresses as WebAuthn relying parties); set public_url, e.g. \
                 https://example.org or http://localhost:8080 for a test.",
            ),
            PasskeyError::Invalid { field, message } => {
                Problem::invalid_field(field, format!("{field} {message}."))
            }
            PasskeyError::Credential(error) => error.into(),
            PasskeyError::Internal(cause) => Problem::internal(&cause),
        }
    }
}

impl Problem {
    /// 401: a TOTP or recovery code that is wrong, outside its window or used already.
    pub fn totp_invalid() -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "totp-invalid",
            "The code is not valid",
            "The code is wrong, too old or too new (one 30-second step either side is accepted), \
             or was used already: each code works once. Wait for the next code, or use a \
             recovery code.",
        )
    }

    /// 503: TOTP is on, but its secret does not open under the node's sealing key.
    pub fn totp_unavailable() -> Self {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "totp-unavailable",
            "The TOTP secret cannot be read",
            "TOTP is on, but the node cannot open its secret: the file sealing.key in its data \
             directory is missing or is not the one the secret was sealed under (a database \
             restored without it). A recovery code still works; the operator restores \
             sealing.key from the same backup as the database.",
        )
    }
}

impl From<TotpChangeError> for Problem {
    fn from(error: TotpChangeError) -> Self {
        match error {
            TotpChangeError::Enabled => Problem::new(
                StatusCode::CONFLICT,
                "totp-enabled",
                "TOTP is on already",
                "TOTP is on: turn it off first (with a current code or a recovery code) to set up \
                 another authenticator.",
            ),
            TotpChangeError::NotEnabled => Problem::new(
                StatusCode::CONFLICT,
                "totp-not-enabled",
                "TOTP is off",
                "TOTP is not on, so there is nothing to turn off and no recovery codes to replace.",
            ),
            TotpChangeError::NotPending => Problem::new(
                StatusCode::CONFLICT,
                "totp-not-pending",
                "No TOTP setup is waiting",
                "There is no setup waiting for its confirming code (none was started, or it is \
                 more than 15 minutes old): POST /api/v1/totp/setup first.",
            ),
            TotpChangeError::InvalidCode => Problem::totp_invalid(),
            TotpChangeError::Unreadable => Problem::totp_unavailable(),
            TotpChangeError::Throttled { retry_after, scope } => {
                Problem::from(UnlockError::Throttled { retry_after, scope })
            }
            TotpChangeError::Internal(cause) => Problem::internal(&cause),
        }
    }
}

impl From<LoginError> for Problem {
    fn from(error: LoginError) -> Self {
        match error {
            LoginError::Rejected(reason) => Problem::new(
                StatusCode::UNAUTHORIZED,
                "invalid-assertion",
                "Sign-in refused",
                format!("The assertion {reason}."),
            ),
            LoginError::SignatureRejected(reason) => Problem::new(
                StatusCode::UNAUTHORIZED,
                "invalid-assertion",
                "Sign-in refused",
                format!("The signature {reason}."),
            ),
            LoginError::Throttled { retry_after } => {
                let mut problem = Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too-many-attempts",
                    "Too many failed attempts",
                    format!(
                        "Too many failed sign-ins from this address. Try again in {retry_after} seconds."
                    ),
                );
                problem.retry_after = Some(retry_after);
                problem.scope = Some(Scope::Client.as_str());
                problem
            }
            LoginError::NetworkNotAllowed { .. } => Problem::network_not_allowed(),
            LoginError::Internal(cause) => Problem::internal(&cause),
        }
    }
}

/// 409: an enrollment request that was approved, denied or ran out already.
fn enrollment_request_closed() -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "enrollment-request-closed",
        "The enrollment request is closed",
        "The request was approved or denied already, or nobody answered it within five \
         minutes; the new device sends a new request.",
    )
}

impl From<crate::auth::enrollment::Gate> for Problem {
    fn from(gate: crate::auth::enrollment::Gate) -> Self {
        use crate::auth::enrollment::Gate;
        match gate {
            Gate::ApprovalRequired => Problem::new(
                StatusCode::FORBIDDEN,
                "enrollment-approval-required",
                "New devices need an approval",
                "This node enrolls new devices only with the approval of a device already \
                 signed in (or while its owner has opened an enrollment window): send an \
                 enrollment request to POST /api/v1/enrollment/requests and approve it there.",
            ),
            Gate::WindowClosed => Problem::new(
                StatusCode::FORBIDDEN,
                "enrollment-window-closed",
                "Enrollment is closed",
                "This node unlocks the owner key for new devices and accepts new credentials \
                 only while its owner has opened an enrollment window, from a signed-in device \
                 or with `siteid enroll --minutes N`.",
            ),
        }
    }
}

impl From<crate::auth::enrollment::EnrollmentError> for Problem {
    fn from(error: crate::auth::enrollment::EnrollmentError) -> Self {
        use crate::auth::enrollment::{
            EnrollmentError, MAX_PENDING_PER_CLIENT, MAX_PENDING_PER_NETWORK, MAX_PENDING_REQUESTS,
        };
        match error {
            EnrollmentError::NotClaimed => Problem::not_claimed(),
            EnrollmentError::Gate(gate) => gate.into(),
            EnrollmentError::Invalid { field, message } => {
                Problem::invalid_field(field, format!("{field} {message}."))
            }
            EnrollmentError::Exists => Problem::new(
                StatusCode::CONFLICT,
                "credential-exists",
                "The key or id is taken",
                "A credential or enrollment request with this key or id exists or existed; \
                 make a new key and a new request id.",
            ),
            EnrollmentError::NotFound => Problem::new(
                StatusCode::NOT_FOUND,
                "enrollment-request-not-found",
                "No such enrollment request",
                "There is no enrollment request with this id (answered requests are forgotten \
                 after a day).",
            ),
            EnrollmentError::Answered => enrollment_request_closed(),
            EnrollmentError::TooManyPending { retry_after } => {
                let mut problem = Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "enrollment-queue-full",
                    "Too many requests are waiting",
                    format!(
                        "At most {MAX_PENDING_REQUESTS} enrollment requests wait at once, \
                     {MAX_PENDING_PER_CLIENT} from one address and {MAX_PENDING_PER_NETWORK} \
                     from one network; retry when one has been answered or has run out (five \
                     minutes)."
                    ),
                );
                problem.retry_after = Some(retry_after);
                problem
            }
            EnrollmentError::RateLimited(limited) => {
                let mut problem = Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too-many-enrollment-requests",
                    "Too many requests",
                    format!(
                        "The node takes a limited number of enrollment requests per minute; \
                         retry after {} seconds.",
                        limited.retry_after
                    ),
                );
                problem.retry_after = Some(limited.retry_after);
                problem.scope = Some(limited.scope);
                problem
            }
            EnrollmentError::ExceedsApprover(names) => Problem::new(
                StatusCode::FORBIDDEN,
                "capabilities-exceed-approver",
                "The approval grants more than the approver holds",
                format!(
                    "A device can grant only capabilities its own session holds; this one lacks: \
                     {}.",
                    names.join(", ")
                ),
            ),
            EnrollmentError::Credential(error) => error.into(),
            EnrollmentError::Internal(cause) => Problem::internal(&cause),
        }
    }
}
