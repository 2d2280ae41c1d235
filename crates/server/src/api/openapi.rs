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
use utoipa::openapi::link::LinkBuilder;
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
    // Every operation under its own id (the handlers' names repeat across modules).
    let mut ids: Vec<(String, String)> = vec![];
    for (path, item) in doc.paths.paths.iter_mut() {
        let secured = path != DOCUMENT_PATH;
        for (method, op) in operations(item) {
            let id = operation_id(method, path);
            op.operation_id = Some(id.clone());
            ids.push((path.clone(), id));
            shared(op, secured);
            if secured && matches!(method, "post" | "patch") {
                op.parameters.get_or_insert_with(Vec::new).push(idempotency_key());
            }
        }
    }
    // Links from each create to the operations on what it created, so a client (and
    // schemathesis's stateful phase) knows where the new `id` goes.
    for (collection, created) in CREATES {
        let targets: Vec<&(String, String)> = ids.iter().filter(|(p, _)| p.starts_with(&format!("{collection}/{{id}}"))).collect();
        let Some(item) = doc.paths.paths.get_mut(*collection) else { continue };
        let Some(response) = item.post.as_mut().and_then(|op| op.responses.responses.get_mut(*created)) else { continue };
        if let RefOr::T(response) = response {
            for (_, id) in targets {
                response.links.insert(id.clone(), RefOr::T(LinkBuilder::new().operation_id(id.clone()).parameter("id", "$response.body#/id").build()));
            }
        }
    }
    doc
}

/// The collections whose `POST` creates an item (answering `201` with its `id`) that the
/// operations under `{collection}/{id}` act on.
const CREATES: &[(&str, &str)] = &[("/api/v1/campaigns", "201"), ("/api/v1/agents", "201"), ("/api/v1/calls", "201")];

/// `post /api/v1/campaigns/{id}/start` → `post_campaigns_id_start`: unique, stable, readable.
fn operation_id(method: &str, path: &str) -> String {
    let rest = path.strip_prefix("/api/v1/").unwrap_or(path);
    let words: Vec<&str> = rest.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
    format!("{method}_{}", words.join("_"))
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("patch", &mut item.patch),
        ("options", &mut item.options),
        ("head", &mut item.head),
        ("trace", &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.as_mut().map(|op| (m, op)))
}

fn shared(op: &mut Operation, secured: bool) {
    let mut add = |status: &str, description: &str| {
        op.responses.responses.entry(status.to_string()).or_insert_with(|| error_response(description));
    };
    add("400", "A request field, query parameter or path segment is not acceptable (`details.field` names it).");
    if secured {
        add("401", "No API key, or an unknown or revoked one, or one of a disabled workspace.");
        add("403", "The API key lacks the scope this operation needs (`insufficient_scope`).");
    }
    add("404", "No such resource in this workspace.");
    add("4XX", "Any other refusal, in the same shape (see docs/api.md for every code).");
    add("5XX", "A fault on our side or the database unreachable (`internal`, `unavailable`).");
    if secured {
        op.security = Some(vec![SecurityRequirement::new(SECURITY_SCHEME, Vec::<String>::new())]);
    }
}

/// The optional `Idempotency-Key` header every `POST` and `PATCH` takes (`api/idempotency.rs`).
fn idempotency_key() -> utoipa::openapi::path::Parameter {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    let schema =
        ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)).max_length(Some(super::idempotency::MAX_KEY_LEN)).pattern(Some("^[!-~]+$")).build();
    ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(utoipa::openapi::Required::False)
        .description(Some(
            "Makes a retry safe: the first answer to this key is replayed for 24 h (`Idempotent-Replayed: true`); \
             the same key with another request is refused (422 `idempotency_key_reused`), and while the first is \
             still running (409 `idempotency_key_in_use`).",
        ))
        .schema(Some(Schema::Object(schema)))
        .build()
}

/// `GET /openapi.json` (under `/api/v1`), itself in the document.
pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(document))
}

/// The document as JSON.
pub fn to_json(doc: &OpenApi) -> serde_json::Value {
    let mut json = serde_json::to_value(doc).unwrap_or_default();
    // utoipa 5.5 writes a Link object's fields in snake_case (`operation_id`); OpenAPI
    // spells them in camelCase.
    // (`get_mut`, not indexing: indexing a missing key would add it as `null`.)
    for item in objects(json.get_mut("paths")) {
        for op in objects(Some(item)) {
            for response in objects(op.get_mut("responses")) {
                for link in objects(response.get_mut("links")) {
                    let Some(link) = link.as_object_mut() else { continue };
                    for (snake, camel) in [("operation_id", "operationId"), ("operation_ref", "operationRef"), ("request_body", "requestBody")] {
                        if let Some(v) = link.remove(snake) {
                            link.insert(camel.to_string(), v);
                        }
                    }
                }
            }
        }
    }
    json
}

/// The values of `v` if it is an object; nothing otherwise.
fn objects(v: Option<&mut serde_json::Value>) -> impl Iterator<Item = &mut serde_json::Value> {
    v.and_then(|v| v.as_object_mut()).into_iter().flat_map(|o| o.values_mut())
}

/// The document as JSON text, built once.
fn rendered() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| to_json(&super::openapi_document()).to_string())
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", responses((status = 200, description = "The OpenAPI 3.1 document of this API.", content_type = "application/json", body = Object)))]
async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], rendered())
}

#[cfg(test)]
mod tests {
    use super::super::QUERY_ROUTES;
    use std::collections::BTreeSet;

    /// (method, path) of every operation with query parameters in the document.
    fn documented_query_routes() -> BTreeSet<(String, String)> {
        let doc = super::to_json(&super::super::openapi_document());
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if op["parameters"].as_array().into_iter().flatten().any(|p| p["in"] == "query") {
                    out.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn the_routes_that_take_a_query_are_the_ones_documented_with_query_parameters() {
        // `no_stray_query` refuses a query string on any route not in QUERY_ROUTES: a
        // documented parameter missing there would be refused, a listed route without
        // documented parameters would accept undocumented ones.
        let listed: BTreeSet<(String, String)> = QUERY_ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
        assert_eq!(listed, documented_query_routes());
    }

    #[test]
    fn resource_modules_mount_routes_only_through_routes_macro() {
        // `OpenApiRouter::route` passes a route through without documenting it.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            // Outside /api/v1: the docs page, the webhooks, and the top-level router.
            if ["docs.rs", "webhooks.rs", "mod.rs"].contains(&name.as_str()) {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Spelled in two halves so this file does not match itself.
            let call = concat!(".route", "(\"");
            assert!(!text.contains(call), "{name} mounts a route with .route(): use .routes(routes!(handler)) so it is in the OpenAPI document");
        }
    }

    #[test]
    fn operation_ids_read_as_method_and_path() {
        assert_eq!(super::operation_id("post", "/api/v1/campaigns/{id}/start"), "post_campaigns_id_start");
        assert_eq!(super::operation_id("get", "/api/v1/campaigns/{id}/export.csv"), "get_campaigns_id_export_csv");
    }
}
