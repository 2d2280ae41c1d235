//! One error type for the whole API: `{"error": {"code", "message", "details"}}` with the
//! right status. 5xx causes are logged and never leaked. Every code the server can answer
//! with is in [`CODES`], and docs/api.md lists the same table (a test checks both ways).

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dialtone_store::StoreError;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// Every error code with its HTTP status and when it is answered: the table docs/api.md
/// shows. A code used anywhere in the server must be listed here (checked by a test that
/// reads the sources), so a client can rely on the list.
pub const CODES: &[(&str, StatusCode, &str)] = &[
    ("invalid_json", StatusCode::BAD_REQUEST, "the body is not valid JSON, or a field is missing or of the wrong type; `details.field` names it"),
    ("invalid_request", StatusCode::BAD_REQUEST, "a field's value is not acceptable; `details.field` names it"),
    ("invalid_query", StatusCode::BAD_REQUEST, "a query parameter is unknown, repeated or malformed (a cursor, a number, a date); `details.field` names it"),
    ("invalid_path", StatusCode::BAD_REQUEST, "a path segment is not valid UTF-8 or not of the expected type; `details.field` names the parameter"),
    ("provider_not_configured", StatusCode::BAD_REQUEST, "the campaign, single call, assistant or phone number names a provider with no account on this server (at create, start and resume); `details` has `field`, `provider`, `missing_settings`, `env` (the `DIALTONE_*` variables to set) and `configured` (the providers that are)"),
    ("master_key_missing", StatusCode::BAD_REQUEST, "a provider account's secrets cannot be stored: the server has no master key (`master_key`, `DIALTONE_MASTER_KEY`); `details.field` is `credentials`, `details.env` names the variable"),
    ("invalid_account", StatusCode::UNPROCESSABLE_ENTITY, "a campaign's, batch's or single call's `account_id` names no provider account of this workspace, a disabled one, or one of another provider; `details.field` is `account_id`"),
    ("invalid_agent", StatusCode::UNPROCESSABLE_ENTITY, "a campaign's or single call's `agent_id` names no agent of this workspace, or the provider cannot stream to dialtone (only exotel and twilio can); `details.field` is `agent_id`"),
    ("too_many_calls", StatusCode::UNPROCESSABLE_ENTITY, "a batch (`POST /batches`) with more than 10,000 calls; `details` has `field` (`calls`), `limit` and `count`"),
    ("invalid_calls", StatusCode::UNPROCESSABLE_ENTITY, "a batch with bad items (unreadable number, bad zone, a number twice): nothing is created; `details.items` lists each as `{\"line\", \"reason\"}` (`line`: the item's 1-based position in `calls`; a number twice also has `duplicate_of`, the `line` of its first item)"),
    ("malformed_webhook", StatusCode::BAD_REQUEST, "an authentic webhook the server cannot read"),
    ("unauthorized", StatusCode::UNAUTHORIZED, "no API key, an unknown or revoked one, or a webhook that fails authentication"),
    ("insufficient_scope", StatusCode::FORBIDDEN, "the API key lacks the scope the request needs (`read` for GET, `write` for POST/PUT/PATCH/DELETE, `admin` for workspaces and keys), or only an admin key of the default workspace may do this; `details.required_scope` names it. Never answered for another workspace's resource: that is a 404"),
    ("not_found", StatusCode::NOT_FOUND, "no such route, or no such resource in this workspace"),
    ("not_configured", StatusCode::NOT_FOUND, "a webhook for a provider this server has no account for"),
    ("method_not_allowed", StatusCode::METHOD_NOT_ALLOWED, "the route exists but not with this method; the `Allow` header and `details.allow` list the methods it takes"),
    ("request_timeout", StatusCode::REQUEST_TIMEOUT, "the client stopped sending the body for longer than `body_read_timeout_secs`"),
    ("conflict", StatusCode::CONFLICT, "the resource is not in a state that allows this (e.g. starting a campaign that is not a draft)"),
    ("idempotency_key_in_use", StatusCode::CONFLICT, "a request with the same `Idempotency-Key` is still running; `Retry-After` says when to send it again"),
    ("idempotency_key_reused", StatusCode::UNPROCESSABLE_ENTITY, "the `Idempotency-Key` was first used with another method, path, query or body; `details.field` is `Idempotency-Key`"),
    ("dnc", StatusCode::CONFLICT, "a single call to a number on a do-not-call list; `details.field` is `phone`, `details.matches` lists the entries"),
    ("payload_too_large", StatusCode::PAYLOAD_TOO_LARGE, "the body is over the route's limit (2 MiB for JSON, 16 MiB for `POST /batches`, 1 MiB for webhooks, 256 MiB for contact uploads); `details.field` is `body`, and a JSON route's answer has `details.limit_bytes`"),
    ("unsupported_media_type", StatusCode::UNSUPPORTED_MEDIA_TYPE, "a missing or wrong `Content-Type` (JSON routes need `application/json`)"),
    ("upgrade_required", StatusCode::UPGRADE_REQUIRED, "a media-stream route (`/media/exotel/{token}`, `/media/twilio`) was requested without WebSocket upgrade headers; the `Upgrade: websocket` header says what it takes"),
    ("too_many_imports", StatusCode::TOO_MANY_REQUESTS, "`max_concurrent_imports` contact imports are already running on this node; send it again when they finish"),
    ("internal", StatusCode::INTERNAL_SERVER_ERROR, "a fault on our side; the cause is in the server log only"),
    ("provider_error", StatusCode::BAD_GATEWAY, "the provider did not confirm an action it was asked for"),
    ("unavailable", StatusCode::SERVICE_UNAVAILABLE, "the database is unreachable, or a webhook could not be stored (the provider may retry)"),
];

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Value,
}

impl ApiError {
    /// `code` must be one of [`CODES`], with its status.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: Value::Null }
    }

    /// A request field is wrong: 400 naming the field.
    pub fn invalid(field: &str, message: impl std::fmt::Display) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, "invalid_request", format!("{field}: {message}"));
        e.details = json!({ "field": field });
        e
    }

    /// A required field is missing from a JSON body (one serde cannot require, because it
    /// is required only in some cases): 400 `invalid_json` naming it first and in
    /// `details.field`, as a field serde requires is (`{field}: missing ({when})`).
    pub fn missing(field: &str, when: &str) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, "invalid_json", format!("{field}: missing ({when})"));
        e.details = json!({ "field": field });
        e
    }

    /// A query parameter is wrong: 400 `invalid_query` naming it.
    pub fn invalid_query(field: &str, message: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_query", format!("{field}: {message}")).with_details(json!({ "field": field }))
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// The body is larger than `limit` bytes (the `max_upload_bytes` setting): 413.
    pub fn too_large(limit: u64) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", format!("the upload is larger than the {limit} bytes allowed (max_upload_bytes)"))
            .with_details(json!({ "limit_bytes": limit }))
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; see the server log")
    }

    /// A request body that could not be read: 408 when the client went quiet for longer
    /// than the body read timeout, 413 when it is over the limit, else 400 naming `body`.
    pub fn body(err: &(dyn std::error::Error + 'static)) -> Self {
        if find::<tower_http::timeout::TimeoutError>(err).is_some() {
            return Self::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", "the request body stopped arriving; send it without pauses");
        }
        if find::<http_body_util::LengthLimitError>(err).is_some() {
            return Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", format!("the body is too large: {err}"))
                .with_details(json!({ "field": "body" }));
        }
        Self::invalid("body", format!("unreadable: {err}"))
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    pub fn status_code(&self) -> StatusCode {
        self.status
    }
}

/// `v` as an absolute URL of `scheme` or its secure form (`http`: http or https; `ws`: ws
/// or wss) with a host, or a 400 naming `field` that says so (never the parser's "relative
/// URL without a base"); `example` is shown. Every URL field of a request is read with this.
pub fn absolute_url(field: &str, v: &str, scheme: &str, example: &str) -> Result<reqwest::Url, ApiError> {
    let wrong = || ApiError::invalid(field, format!("must be an absolute {scheme}(s) URL, e.g. {example}"));
    let v = v.trim();
    // The URL parser (WHATWG) forgives what a user did not mean and then calls something
    // else than is stored and shown: spaces and line breaks are dropped or escaped,
    // `http:example.com` and `http:/example.com` gain their slashes, `http:///x` takes `x`
    // as its host, `http://@host` drops an empty user. Such a URL is refused as written.
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::invalid(field, "must not contain spaces, line breaks or control characters"));
    }
    match v.split_once("://") {
        Some((_, authority)) if !authority.is_empty() && !authority.starts_with(['/', '@', '?', '#']) => {}
        _ => return Err(wrong()),
    }
    let parsed = reqwest::Url::parse(v).map_err(|_| wrong())?;
    let secure = format!("{scheme}s");
    if !(parsed.scheme() == scheme || parsed.scheme() == secure) || parsed.host_str().is_none() {
        return Err(wrong());
    }
    Ok(parsed)
}

/// The first error of type `E` in `err`'s source chain (axum wraps body errors twice).
fn find<'a, E: std::error::Error + 'static>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a E> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        cur = e.source();
    }
    None
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message, "details": self.details } });
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(missing) => ApiError::not_found(missing.what),
            StoreError::Conflict(m) => ApiError::conflict(m),
            StoreError::NoMasterKey => ApiError::new(StatusCode::BAD_REQUEST, "master_key_missing", StoreError::NoMasterKey.to_string())
                .with_details(json!({ "field": "credentials", "env": "DIALTONE_MASTER_KEY" })),
            other => ApiError::internal(other),
        }
    }
}

/// A JSON body that does not fit its type, naming the field by its path (`numbers[0]`,
/// `schedule.timezone`) and saying what is wrong in plain words ([`plain_words`]), not
/// serde's ("invalid type: string \"x\", expected u32 at line 1 column 22").
pub fn json_data_error(err: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = err.path().to_string();
    let inner = err.inner().to_string();
    if err.inner().is_syntax() || err.inner().is_eof() {
        // Not a field's fault: the text is not JSON. Where it broke helps here.
        let (line, column) = (err.inner().line(), err.inner().column());
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not valid JSON: {} (line {line}, column {column})", plain_words(&inner)),
        );
    }
    let mut field = path.clone();
    // A missing, unknown or repeated key fails before it enters the path; serde's own
    // message ("unknown field `numbrs`, expected …") still names it.
    let named = ["missing field `", "unknown field `", "duplicate field `"].iter().find_map(|p| inner.split_once(p)).and_then(|(_, rest)| rest.split_once('`'));
    if let Some((name, _)) = named {
        // An unknown key is in the path already; a missing one is not (the path is its object's).
        let in_path = path == name || path.ends_with(&format!(".{name}"));
        field = if path == "." {
            name.to_string()
        } else if in_path {
            path.clone()
        } else {
            format!("{path}.{name}")
        };
    }
    let words = plain_words(&inner);
    let message = if field == "." { words } else { format!("{field}: {words}") };
    let details = if field == "." { Value::Null } else { json!({ "field": field }) };
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", message).with_details(details)
}

/// serde_json's wording of a body error in plain words, without the field (the caller puts
/// it in front) nor the line and column (a JSON body is usually one line):
/// `invalid type: string "x", expected u32` → `must be a whole number, not "x"`;
/// `unknown variant `twilo`, expected one of `sim`, `vapi`` → `must be one of sim, vapi, not "twilo"`;
/// `missing field `name`` → `is required`. A message it does not know (a field's own check)
/// is kept as it is.
pub fn plain_words(serde: &str) -> String {
    let mut s = serde.trim();
    // serde_json appends " at line L column C".
    if let Some(at) = s.rfind(" at line ") {
        if s[at + 9..].split_once(" column ").is_some_and(|(l, c)| l.parse::<u64>().is_ok() && c.parse::<u64>().is_ok()) {
            s = &s[..at];
        }
    }
    let names = |list: &str| -> String {
        // "one of `a`, `b`" | "`a` or `b`" | "`a`"
        let list = list.trim_start_matches("one of ");
        list.split(['`', ',']).map(str::trim).filter(|w| !w.is_empty() && *w != "or").collect::<Vec<_>>().join(", ")
    };
    if let Some(rest) = s.strip_prefix("invalid type: ").or_else(|| s.strip_prefix("invalid value: ")) {
        if let Some((got, expected)) = rest.split_once(", expected ") {
            // A whole number too large for the type is a whole number all the same (the
            // field's own check states its range once it fits).
            if let (Some(n), true) = (got.strip_prefix("integer `").and_then(|v| v.strip_suffix('`')), INTEGER_TYPES.contains(&expected)) {
                if !n.starts_with('-') {
                    return format!("is too large, not {n}");
                }
            }
            return format!("must be {}, not {}", expected_words(expected), got_words(got));
        }
    }
    // Query parameters (serde_urlencoded parses numbers with `str::parse`).
    match s {
        "number too large to fit in target type" => return "is too large".to_string(),
        "number too small to fit in target type" => return "is too small".to_string(),
        "invalid digit found in string" => return "must be a whole number".to_string(),
        "cannot parse integer from empty string" => return "must be a whole number, not empty".to_string(),
        "invalid float literal" => return "must be a number".to_string(),
        _ => {}
    }
    if let Some(rest) = s.strip_prefix("unknown variant `") {
        if let Some((got, tail)) = rest.split_once('`') {
            return match tail.strip_prefix(", expected ") {
                Some(list) => format!("must be one of {}, not {got:?}", names(list)),
                None => format!("{got:?} is not an accepted value"),
            };
        }
    }
    if let Some(rest) = s.strip_prefix("unknown field `") {
        if let Some((_, tail)) = rest.split_once('`') {
            return match tail.strip_prefix(", expected ") {
                Some(list) => format!("is not a field here; the fields are {}", names(list)),
                None => "is not a field here; this object takes no fields".to_string(),
            };
        }
    }
    if s.starts_with("missing field `") {
        return "is required".to_string();
    }
    if s.starts_with("duplicate field `") {
        return "is given twice".to_string();
    }
    if let Some(rest) = s.strip_prefix("invalid length ") {
        if let Some((n, expected)) = rest.split_once(", expected ") {
            return format!("must be {expected}, not {n} long");
        }
    }
    if s.starts_with("EOF while parsing") {
        return "it ends too soon".to_string();
    }
    s.to_string()
}

/// serde's names of the integer types.
const INTEGER_TYPES: [&str; 10] = ["u8", "u16", "u32", "u64", "usize", "i8", "i16", "i32", "i64", "isize"];

/// What serde expected, in words: `u32` → "a whole number".
fn expected_words(expected: &str) -> String {
    match expected {
        // No range: the type's (0 to 4294967295 for a u32) is rarely the field's (1 to
        // 10,000), which the field's own check states once a whole number arrives.
        e if INTEGER_TYPES.contains(&e) => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a string" | "a borrowed string" | "string" => "text (a JSON string)".into(),
        "a boolean" => "true or false".into(),
        "a sequence" | "a tuple" => "a list (a JSON array)".into(),
        "a map" => "an object".into(),
        e if e.starts_with("struct ") || e.starts_with("a map") => "an object".into(),
        e if e.starts_with("a sequence") => "a list (a JSON array)".into(),
        e => e.to_string(),
    }
}

/// What serde got, in words: `string "x"` → `"x"`, `integer `5`` → `5`, `map` → "an object".
fn got_words(got: &str) -> String {
    let quoted = |prefix: &str| got.strip_prefix(prefix).map(|v| v.trim_matches('`').to_string());
    if let Some(v) = got.strip_prefix("string ") {
        return v.to_string();
    }
    if let Some(v) = quoted("integer ").or_else(|| quoted("floating point ")).or_else(|| quoted("boolean ")) {
        return v;
    }
    match got {
        "map" => "an object".into(),
        "sequence" => "a list".into(),
        "null" | "unit value" => "null".into(),
        g => g.to_string(),
    }
}

/// What is wrong with text holding U+0000, which PostgreSQL's `text` cannot store: the one
/// wording for every input (JSON bodies, query strings, CSV cells), after the field's name.
pub const NUL_MESSAGE: &str = "must not contain a NUL character (U+0000)";

/// The path (`name`, `calls[3].name`, `variables.x`) of the first string in `value` — a
/// value or an object key, at any depth — that holds U+0000; `None` when none does. A key
/// holding it is named with the NUL written `\u0000`.
pub fn nul_path(value: &Value) -> Option<String> {
    fn walk(value: &Value, path: &mut String) -> bool {
        match value {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            Value::Object(map) => map.iter().any(|(key, item)| {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key.replace('\0', "\\u0000"));
                let found = key.contains('\0') || walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            _ => false,
        }
    }
    let mut path = String::new();
    walk(value, &mut path).then_some(path)
}

/// A 400 `invalid_json` naming the field of a JSON body that holds U+0000 ([`nul_path`]).
pub fn nul_error(path: &str) -> ApiError {
    let field = if path.is_empty() { "body" } else { path };
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", format!("{field}: {NUL_MESSAGE}")).with_details(json!({ "field": field }))
}

/// Reads a JSON body into `T`, with [`json_data_error`]'s field names. A string holding
/// U+0000 anywhere in it (a value or a key) is refused first, naming its path: the same on
/// every database, where PostgreSQL would fail to store it.
pub fn from_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // JSON text can carry U+0000 only as the escape `\u0000` (a raw 0x00 is a syntax
    // error): bodies without those six bytes need no second look.
    if body.windows(6).any(|w| w == b"\\u0000") {
        if let Ok(value) = serde_json::from_slice::<Value>(body) {
            if let Some(path) = nul_path(&value) {
                return Err(nul_error(&path));
            }
        }
    }
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(body)).map_err(|e| json_data_error(&e))
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => {
                ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "send the body as JSON with Content-Type: application/json")
            }
            JsonRejection::BytesRejection(e) => e.into(),
            other => {
                // axum keeps serde_path_to_error's error as the source: it knows the field.
                let named = std::error::Error::source(&other).and_then(find::<serde_path_to_error::Error<serde_json::Error>>).map(json_data_error);
                named.unwrap_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", other.body_text()))
            }
        }
    }
}

/// A raw body (`Bytes`) that could not be read: 413 over the route's limit, 408 when it
/// stopped arriving, else 400 — in our shape, never axum's plain text.
impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(r: axum::extract::rejection::BytesRejection) -> Self {
        // axum's own length-limit rejection does not chain to its cause: its status says it.
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", format!("body: {}", r.body_text()))
                .with_details(json!({ "field": "body" }));
        }
        ApiError::body(&r)
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        use axum::extract::path::ErrorKind;
        let field = match &r {
            PathRejection::FailedToDeserializePathParams(e) => match e.kind() {
                ErrorKind::InvalidUtf8InPathParam { key } | ErrorKind::ParseErrorAtKey { key, .. } | ErrorKind::DeserializeError { key, .. } => {
                    Some(key.clone())
                }
                _ => None,
            },
            _ => None,
        };
        if r.status().is_server_error() {
            return ApiError::internal(r.body_text());
        }
        let e = ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", r.body_text());
        match field {
            Some(f) => e.with_details(json!({ "field": f })),
            None => e,
        }
    }
}

/// The query string read into `T`: a parameter `T` does not have, one given twice, or one
/// that does not parse is a 400 `invalid_query` naming it (a typo such as `campain_id`
/// must not silently widen a filter). `T`'s fields are read from its `Deserialize` impl, so
/// there is no second list to keep in step.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parse_query(parts.uri.query().unwrap_or("")).map(Query)
    }
}

/// [`Query`]'s rules on a raw query string.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let accepted = super::query::fields::<T>();
    check_query_keys(query, accepted)?;
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        ApiError::invalid_query(if field == "." { "query" } else { &field }, plain_words(&e.inner().to_string()))
    })
}

/// Refuses a key not in `accepted` (`None`: any key), one given twice, one with an empty
/// value (`?workspace_id=`: an unset variable in a script, which must not quietly mean the
/// default), or one whose name or value holds U+0000 ([`NUL_MESSAGE`]), naming it.
pub fn check_query_keys(query: &str, accepted: Option<&[&str]>) -> Result<(), ApiError> {
    let mut seen: Vec<String> = vec![];
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if key.contains('\0') || value.contains('\0') {
            return Err(ApiError::invalid_query(&key.replace('\0', "\\u0000"), NUL_MESSAGE));
        }
        if let Some(accepted) = accepted {
            if !accepted.contains(&key.as_ref()) {
                let list = if accepted.is_empty() { "this route takes no query parameters".to_string() } else { format!("accepted: {}", accepted.join(", ")) };
                return Err(
                    ApiError::invalid_query(&key, format!("unknown query parameter; {list}")).with_details(json!({ "field": key, "accepted": accepted }))
                );
            }
        }
        if seen.iter().any(|k| *k == key) {
            return Err(ApiError::invalid_query(&key, "given more than once"));
        }
        // Blank or only separators (`status=%20`, `status=,`) says no more than empty.
        if value.split(',').all(|v| v.trim().is_empty()) {
            return Err(ApiError::invalid_query(&key, "empty; give a value, or leave the parameter out for its default"));
        }
        seen.push(key.into_owned());
    }
    Ok(())
}

/// `axum::extract::Path`, with rejections (invalid UTF-8, a bad type, a segment holding
/// U+0000) in our error shape.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        // Raw segments that do not even decode (invalid UTF-8) are refused by `Path` below.
        if let Ok(raw) = axum::extract::RawPathParams::from_request_parts(parts, state).await {
            if let Some((key, _)) = raw.iter().find(|(_, value)| value.contains('\0')) {
                return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", format!("{key}: {NUL_MESSAGE}")).with_details(json!({ "field": key })));
            }
        }
        let axum::extract::Path(value) = axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Path(value))
    }
}

/// The body limit of a JSON route, in bytes, for its 413: axum's default (2 MiB) unless the
/// route sets another with [`BodyLimit::layers`].
pub const JSON_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// A route's own body limit in bytes, a request extension read by [`Json`] so that its 413
/// names the limit (axum's rejection does not say it).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

impl BodyLimit {
    /// The layers that set a route's limit to `bytes`: axum's `DefaultBodyLimit`, and this
    /// extension saying it. Apply both (`.layer(a).layer(b)`).
    pub fn layers(bytes: usize) -> (axum::extract::DefaultBodyLimit, axum::Extension<BodyLimit>) {
        (axum::extract::DefaultBodyLimit::max(bytes), axum::Extension(BodyLimit(bytes)))
    }
}

/// 413 `payload_too_large` for a body over `limit` bytes, naming `body` and the limit.
pub fn body_too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("body: larger than this route's limit of {limit} bytes ({:.0} MiB); send less in one request", limit as f64 / 1_048_576.0),
    )
    .with_details(json!({ "field": "body", "limit_bytes": limit }))
}

/// A JSON body read with [`from_json`] (its field paths, its NUL refusal), rejections in our
/// error shape. The request needs `Content-Type: application/json` (or `application/*+json`).
/// Over the route's limit ([`BodyLimit`], else [`JSON_BODY_LIMIT`]): [`body_too_large`].
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let limit = req.extensions().get::<BodyLimit>().map_or(JSON_BODY_LIMIT, |l| l.0);
        let body = match axum::body::Bytes::from_request(req, state).await {
            Ok(body) => body,
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(body_too_large(limit)),
            Err(r) => return Err(r.into()),
        };
        from_json(&body).map(Json)
    }
}

/// Whether `Content-Type` says JSON: `application/json` or `application/…+json`, any parameters.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence.strip_prefix("application/").is_some_and(|sub| sub == "json" || sub.ends_with("+json"))
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Codes that say something specific a bare status does not (`invalid_agent`'s 422, the
/// `Idempotency-Key` refusals): never given to an answer that arrived without our shape.
const SPECIFIC: &[&str] = &["invalid_account", "invalid_agent", "too_many_calls", "invalid_calls", "idempotency_key_in_use", "idempotency_key_reused"];

/// The code a bare status gets when something below our handlers (axum's router, a
/// tower layer) answered without our shape: the first code listed for it, leaving out the
/// [`SPECIFIC`] ones (a bare 422 stays `invalid_request`).
pub fn code_for(status: StatusCode) -> &'static str {
    CODES.iter().find(|(c, s, _)| *s == status && !SPECIFIC.contains(c)).map(|(c, _, _)| *c).unwrap_or(if status.is_server_error() {
        "internal"
    } else {
        "invalid_request"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_wording_becomes_plain_words() {
        let cases = [
            ("invalid type: string \"x\", expected u32 at line 1 column 22", "must be a whole number, not \"x\""),
            ("invalid value: integer `-1`, expected u32 at line 1 column 3", "must be a whole number, not -1"),
            ("invalid value: integer `99999999999`, expected u32 at line 1 column 15", "is too large, not 99999999999"),
            ("number too large to fit in target type", "is too large"),
            ("invalid digit found in string", "must be a whole number"),
            ("invalid type: integer `5`, expected a string at line 1 column 9", "must be text (a JSON string), not 5"),
            ("invalid type: map, expected a sequence", "must be a list (a JSON array), not an object"),
            ("invalid type: null, expected a boolean", "must be true or false, not null"),
            ("unknown variant `twilo`, expected one of `sim`, `vapi`, `twilio`", "must be one of sim, vapi, twilio, not \"twilo\""),
            ("unknown variant `x`, expected `a` or `b`", "must be one of a, b, not \"x\""),
            ("unknown field `nme`, expected `name` or `max_concurrent` at line 1 column 6", "is not a field here; the fields are name, max_concurrent"),
            ("missing field `assistant_id` at line 1 column 40", "is required"),
            ("duplicate field `name`", "is given twice"),
            ("must be 1 to 200 characters", "must be 1 to 200 characters"),
        ];
        for (serde, plain) in cases {
            assert_eq!(plain_words(serde), plain, "{serde}");
        }
    }

    #[test]
    fn a_nul_is_found_at_any_depth_and_named_by_its_json_path() {
        let cases = [
            (json!({"name": "a\u{0}b"}), Some("name")),
            (json!({"calls": [{"name": "x"}, {"name": "y"}, {"name": "z"}, {"name": "\u{0}"}]}), Some("calls[3].name")),
            (json!({"variables": {"x": "\u{0}"}}), Some("variables.x")),
            (json!({"variables": {"a\u{0}": 1}}), Some("variables.a\\u0000")),
            (json!(["ok", ["\u{0}"]]), Some("[1][0]")),
            (json!({"name": "a\\u0000 is text, not a NUL", "n": 0}), None),
        ];
        for (value, want) in cases {
            assert_eq!(nul_path(&value).as_deref(), want, "{value}");
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Body {
            name: String,
        }
        let e = from_json::<Body>(br#"{"name": "a\u0000"}"#).unwrap_err();
        assert_eq!((e.status, e.code, e.message.as_str()), (StatusCode::BAD_REQUEST, "invalid_json", "name: must not contain a NUL character (U+0000)"));
        assert_eq!(e.details, json!({"field": "name"}));
        assert!(from_json::<Body>(br#"{"name": "a\\u0000"}"#).is_ok(), "an escaped backslash before u0000 is no NUL");
    }

    use std::collections::BTreeMap;
    use std::path::Path;

    fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }

    /// Every literal code given to `ApiError::new` in the server's sources, and the
    /// status each code is used with.
    fn codes_in_sources() -> BTreeMap<String, Vec<(String, String)>> {
        let mut files = vec![];
        sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
        let re = regex::Regex::new(r#"(?:ApiError|Self)::new\(\s*(?:[\w:]*::)?StatusCode::(\w+)\s*,\s*"([^"]*)""#).unwrap();
        let mut found: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for (file, text) in files {
            for c in re.captures_iter(&text) {
                found.entry(c[2].to_string()).or_default().push((c[1].to_string(), file.clone()));
            }
        }
        found
    }

    fn status_name(s: StatusCode) -> String {
        s.canonical_reason().unwrap().to_ascii_uppercase().replace(' ', "_")
    }

    #[test]
    fn every_code_the_sources_produce_is_listed_with_its_status_and_every_listed_code_is_produced() {
        let found = codes_in_sources();
        assert!(found.contains_key("invalid_request") && found.contains_key("internal"), "the scan finds the constructors: {found:?}");
        for (code, uses) in &found {
            let (_, status, _) =
                CODES.iter().find(|(c, _, _)| c == code).unwrap_or_else(|| panic!("code {code:?} used in {uses:?} is not in CODES (and docs/api.md)"));
            for (used, file) in uses {
                assert_eq!(*used, status_name(*status), "{code} is listed as {status} but {file} answers it with {used}");
            }
        }
        for (code, _, _) in CODES {
            assert!(found.contains_key(*code), "{code} is listed in CODES but nothing produces it");
        }
    }

    #[test]
    fn docs_api_md_lists_exactly_the_codes_with_their_statuses() {
        let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/api.md")).unwrap();
        let re = regex::Regex::new(r"(?m)^\| `([a-z_]+)` \| (\d{3}) \|").unwrap();
        let documented: BTreeMap<String, u16> = re.captures_iter(&doc).map(|c| (c[1].to_string(), c[2].parse().unwrap())).collect();
        let listed: BTreeMap<String, u16> = CODES.iter().map(|(c, s, _)| (c.to_string(), s.as_u16())).collect();
        assert_eq!(documented, listed, "docs/api.md's error table and CODES differ");
    }

    #[test]
    fn a_bare_status_gets_the_listed_code() {
        assert_eq!(code_for(StatusCode::METHOD_NOT_ALLOWED), "method_not_allowed");
        assert_eq!(code_for(StatusCode::PAYLOAD_TOO_LARGE), "payload_too_large");
        assert_eq!(code_for(StatusCode::UNSUPPORTED_MEDIA_TYPE), "unsupported_media_type");
        assert_eq!(code_for(StatusCode::UNPROCESSABLE_ENTITY), "invalid_request");
        assert_eq!(code_for(StatusCode::CONFLICT), "conflict");
        assert_eq!(code_for(StatusCode::GATEWAY_TIMEOUT), "internal");
    }
}
