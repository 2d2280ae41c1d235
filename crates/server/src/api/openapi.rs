//! The OpenAPI 3.1 document of `/api/v1`, generated from the code with utoipa and served
//! at `GET /api/v1/openapi.json` (no API key needed: it describes the API, it holds no data).
//!
//! Operations come from the `#[utoipa::path]` annotations of the handlers, which each
//! resource module mounts with `utoipa_axum::routes!()`. [`finish`] then adds what every
//! operation shares: the bearer security scheme, and the error responses (every 4xx and
//! 5xx is the one [`ErrorBody`] shape, `{"error": {"code", "message", "details"}}`).

use super::error::CODES;
use crate::app::AppState;
use axum::http::header;
use axum::response::IntoResponse;
use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The name of the security scheme: `Authorization: Bearer <API key>` (`dialtone keys create`).
pub const SECURITY_SCHEME: &str = "bearer";

/// The path of the document itself, the one operation that needs no API key.
pub const DOCUMENT_PATH: &str = "/api/v1/openapi.json";

/// The body of every error response: `{"error": {"code", "message", "details"}}`, `code`
/// one of [`CODES`] (the table in docs/api.md), `details` an object naming the `field` at
/// fault when there is one, else `null`. Documentation only: [`super::ApiError`] writes it.
pub struct ErrorBody;

impl PartialSchema for ErrorBody {
    fn schema() -> RefOr<Schema> {
        let codes: Vec<&str> = CODES.iter().map(|(c, _, _)| *c).collect();
        let error = ObjectBuilder::new()
            .property("code", ObjectBuilder::new().schema_type(Type::String).enum_values(Some(codes)).description(Some("What went wrong; see docs/api.md.")))
            .required("code")
            .property("message", ObjectBuilder::new().schema_type(Type::String).description(Some("For a person: what to change.")))
            .required("message")
            .property(
                "details",
                ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::SchemaType::from_iter([Type::Object, Type::Null]))
                    .description(Some("`field` names the request field at fault, with more per code; `null` when there is nothing to add.")),
            )
            .required("details");
        ObjectBuilder::new()
            .property("error", error)
            .required("error")
            .description(Some("Every 4xx and 5xx answer of the API, with the status of its `code`."))
            .into()
    }
}

impl ToSchema for ErrorBody {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Error")
    }
}

/// The document before the routes are added: title, version, the error schema.
pub fn base() -> OpenApi {
    let mut doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("dialtone API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The campaign call engine's HTTP API. Send `Authorization: Bearer <API key>` (create one with `dialtone keys create`). \
                     Every error is `{\"error\": {\"code\", \"message\", \"details\"}}`; the codes are listed in docs/api.md.",
                ))
                .license(Some(utoipa::openapi::LicenseBuilder::new().name("Apache-2.0").identifier(Some("Apache-2.0")).build()))
                .build(),
        )
        .build();
    let components = doc.components.get_or_insert_with(Default::default);
    components.schemas.insert(ErrorBody::name().into_owned(), ErrorBody::schema());
    doc
}

fn error_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name(ErrorBody::name()))).build())
        .build()
        .into()
}

/// Adds what every operation shares: the error responses and, except on the document
/// itself, the bearer API key.
pub fn finish(mut doc: OpenApi) -> OpenApi {
    let components = doc.components.get_or_insert_with(Default::default);
    components.security_schemes.insert(
        SECURITY_SCHEME.to_string(),
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("An API key from `dialtone keys create`.")).build()),
    );
    for (path, item) in doc.paths.paths.iter_mut() {
        let secured = path != DOCUMENT_PATH;
        let ops = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.options, &mut item.head, &mut item.patch, &mut item.trace];
        for op in ops.into_iter().flatten() {
            shared(op, secured);
        }
    }
    doc
}

fn shared(op: &mut Operation, secured: bool) {
    let mut add = |status: &str, description: &str| {
        op.responses.responses.entry(status.to_string()).or_insert_with(|| error_response(description));
    };
    add("400", "A request field, query parameter or path segment is not acceptable (`details.field` names it).");
    if secured {
        add("401", "No API key, or an unknown or revoked one.");
    }
    add("404", "No such resource in this workspace.");
    add("4XX", "Any other refusal, in the same shape (see docs/api.md for every code).");
    add("5XX", "A fault on our side or the database unreachable (`internal`, `unavailable`).");
    if secured {
        op.security = Some(vec![SecurityRequirement::new(SECURITY_SCHEME, Vec::<String>::new())]);
    }
}

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(document))
}

/// The document as JSON text, built once.
fn rendered() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| super::openapi_document().to_pretty_json().unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")))
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", responses((status = 200, description = "The OpenAPI 3.1 document of this API.", content_type = "application/json", body = Object)))]
async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], rendered())
}
