//! The strict JSON body extractor: `application/json` only, bounded in size, no duplicate,
//! unknown or missing members, no trailing data. Every refusal is a problem+json answer.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{FromRequest, HttpRequest, dev, web};
use serde::de::DeserializeOwned;

use crate::error::Problem;

/// The largest JSON body accepted, in bytes. The biggest request, a claim, needs about 13 KiB.
pub const MAX_JSON_BODY: usize = 16 * 1024;
/// How long a client may take to send its body.
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A request body parsed strictly as `T`, at most `LIMIT` bytes.
#[derive(Debug)]
pub struct StrictJson<T, const LIMIT: usize = MAX_JSON_BODY>(pub T);

impl<T: DeserializeOwned + 'static, const LIMIT: usize> FromRequest for StrictJson<T, LIMIT> {
    type Error = Problem;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Problem>>>>;

    fn from_request(request: &HttpRequest, payload: &mut dev::Payload) -> Self::Future {
        let headers_ok = check_headers(request.headers(), LIMIT);
        let body = web::Payload::from_request(request, payload);
        Box::pin(async move {
            headers_ok?;
            let payload = body
                .await
                .map_err(|_| bad_body("The request body could not be read."))?;
            let body = read_body(payload, LIMIT).await?;
            parse(&body).map(StrictJson)
        })
    }
}

/// The whole body, at most `limit` bytes, within [`BODY_TIMEOUT`]: 408 `body-timeout`, 413
/// `body-too-large` or 400 `malformed-json` otherwise.
pub async fn read_body(payload: web::Payload, limit: usize) -> Result<web::Bytes, Problem> {
    tokio::time::timeout(BODY_TIMEOUT, payload.to_bytes_limited(limit))
        .await
        .map_err(|_| {
            Problem::new(
                StatusCode::REQUEST_TIMEOUT,
                "body-timeout",
                "The request body was too slow",
                format!(
                    "The whole body must arrive within {} seconds.",
                    BODY_TIMEOUT.as_secs()
                ),
            )
        })?
        .map_err(|_| too_large(limit))?
        .map_err(|_| bad_body("The request body could not be read."))
}

fn check_headers(headers: &HeaderMap, limit: usize) -> Result<(), Problem> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if !is_json_media_type(content_type) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "The body must be JSON",
            format!(
                "Send the body as application/json (optionally with charset=utf-8), not {:?}.",
                content_type
            ),
        ));
    }
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    if declared_length.is_some_and(|length| length > limit as u64) {
        return Err(too_large(limit));
    }
    Ok(())
}

fn is_json_media_type(content_type: &str) -> bool {
    let mut parts = content_type.split(';').map(str::trim);
    let essence_ok = parts
        .next()
        .is_some_and(|essence| essence.eq_ignore_ascii_case("application/json"));
    essence_ok
        && parts.all(|parameter| {
            parameter.eq_ignore_ascii_case("charset=utf-8")
                || parameter.eq_ignore_ascii_case("charset=\"utf-8\"")
        })
}

fn too_large(limit: usize) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body-too-large",
        "The request body is too large",
        format!("Request bodies are limited to {limit} bytes."),
    )
}

fn bad_body(detail: &str) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "malformed-json",
        "The body is not valid JSON",
        detail,
    )
}

/// Parses a body as `T`: syntax errors are 400, well-formed JSON of the wrong shape is 422
/// naming the member at fault.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    // Syntax first, so that a truncated body is a 400 whatever its first members are.
    if let Err(error) = serde_json::from_slice::<serde::de::IgnoredAny>(body) {
        return Err(bad_body(&format!("The body is not valid JSON: {error}.")));
    }
    if !crate::jose::is_json_object(body) {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-body",
            "The body does not have the expected shape",
            "The body must be a JSON object.",
        ));
    }
    match serde_json::from_slice::<T>(body) {
        Ok(value) => Ok(value),
        Err(error) if error.is_data() => {
            // A second pass only to find where the data went wrong.
            let mut deserializer = serde_json::Deserializer::from_slice(body);
            let path = serde_path_to_error::deserialize::<_, T>(&mut deserializer)
                .err()
                .map(|e| e.path().to_string())
                .filter(|path| path != ".");
            let message = error.to_string();
            let field = path.or_else(|| backticked_member(&message));
            let detail = format!("The body does not have the expected members: {message}.");
            Err(match field {
                Some(field) => Problem::invalid_field(field, detail),
                None => Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid-body",
                    "The body does not have the expected shape",
                    detail,
                ),
            })
        }
        Err(error) => Err(bad_body(&format!("The body is not valid JSON: {error}."))),
    }
}

/// The member named in serde's "unknown field `x`", "missing field `x`" and
/// "duplicate field `x`" messages.
fn backticked_member(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let length = message[start..].find('`')?;
    let is_member_error = ["unknown field", "missing field", "duplicate field"]
        .iter()
        .any(|prefix| message.starts_with(prefix));
    is_member_error.then(|| message[start..start + length].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        count: u32,
    }

    fn problem(body: &str) -> Problem {
        parse::<Body>(body.as_bytes()).expect_err("should be refused")
    }

    #[test]
    fn a_good_body_parses() {
        assert!(parse::<Body>(br#"{"name":"a","count":1}"#).is_ok());
    }

    #[test]
    fn an_array_is_not_an_object() {
        let problem = parse::<Body>(br#"["a", 1]"#).expect_err("refused");
        assert_eq!(problem.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(problem.slug, "invalid-body");
    }

    #[test]
    fn a_syntax_error_is_400() {
        assert_eq!(problem(r#"{"name":"a","#).status, StatusCode::BAD_REQUEST);
        assert_eq!(
            problem(r#"{"name":"a","count":1} x"#).status,
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn shape_errors_are_422_and_name_the_member() {
        for (body, field) in [
            (r#"{"name":"a","count":"1"}"#, "count"),
            (r#"{"name":"a","count":1,"extra":true}"#, "extra"),
            (r#"{"name":"a"}"#, "count"),
            (r#"{"name":"a","name":"b","count":1}"#, "name"),
        ] {
            let problem = problem(body);
            assert_eq!(problem.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert_eq!(problem.field.as_deref(), Some(field), "{body}");
        }
    }

    #[test]
    fn only_json_media_types_are_accepted() {
        assert!(is_json_media_type("application/json"));
        assert!(is_json_media_type("Application/JSON; charset=UTF-8"));
        assert!(!is_json_media_type("text/plain"));
        assert!(!is_json_media_type("application/json; charset=latin1"));
        assert!(!is_json_media_type(""));
    }
}
