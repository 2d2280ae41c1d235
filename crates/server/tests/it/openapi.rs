//! `GET /api/v1/openapi.json` and `GET /docs`: the document is OpenAPI 3.1, names every
//! `/api/v1` route the server answers, puts every error under the one error shape and asks
//! for the bearer key; the docs page and its assets come from the binary, nothing from elsewhere.

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Every `/api/v1` operation: the API's contract (docs/api.md). A route added to the server
/// shows up in the document by construction (`utoipa_axum::routes!`); this list catches one
/// dropped or renamed.
const OPERATIONS: &[(&str, &str)] = &[
    ("get", "/api/v1/events"),
    ("get", "/api/v1/campaigns"),
    ("post", "/api/v1/campaigns"),
    ("get", "/api/v1/campaigns/{id}"),
    ("patch", "/api/v1/campaigns/{id}"),
    ("delete", "/api/v1/campaigns/{id}"),
    ("get", "/api/v1/campaigns/{id}/contacts"),
    ("post", "/api/v1/campaigns/{id}/contacts"),
    ("get", "/api/v1/campaigns/{id}/export.csv"),
    ("post", "/api/v1/campaigns/{id}/start"),
    ("post", "/api/v1/campaigns/{id}/pause"),
    ("post", "/api/v1/campaigns/{id}/resume"),
    ("post", "/api/v1/campaigns/{id}/cancel"),
    ("get", "/api/v1/campaigns/{id}/dnc"),
    ("post", "/api/v1/campaigns/{id}/dnc"),
    ("delete", "/api/v1/campaigns/{id}/dnc/{phone}"),
    ("get", "/api/v1/calls"),
    ("post", "/api/v1/calls"),
    ("get", "/api/v1/calls/{id}"),
    ("put", "/api/v1/calls/{id}"),
    ("delete", "/api/v1/calls/{id}"),
    ("post", "/api/v1/calls/{id}/hangup"),
    ("get", "/api/v1/batches"),
    ("post", "/api/v1/batches"),
    ("get", "/api/v1/batches/{id}"),
    ("get", "/api/v1/batches/{id}/calls"),
    ("post", "/api/v1/batches/{id}/cancel"),
    ("get", "/api/v1/contacts/{id}"),
    ("post", "/api/v1/contacts/{id}/retry"),
    ("post", "/api/v1/contacts/{id}/cancel"),
    ("get", "/api/v1/dnc"),
    ("post", "/api/v1/dnc"),
    ("get", "/api/v1/dnc/check"),
    ("delete", "/api/v1/dnc/{phone}"),
    ("get", "/api/v1/assistants"),
    ("post", "/api/v1/assistants"),
    ("get", "/api/v1/phone-numbers"),
    ("post", "/api/v1/phone-numbers"),
    ("delete", "/api/v1/phone-numbers/{number}"),
    ("get", "/api/v1/agents"),
    ("post", "/api/v1/agents"),
    ("get", "/api/v1/agents/{id}"),
    ("patch", "/api/v1/agents/{id}"),
    ("delete", "/api/v1/agents/{id}"),
    ("post", "/api/v1/webhook-endpoints"),
    ("get", "/api/v1/webhook-endpoints"),
    ("get", "/api/v1/webhook-endpoints/{id}"),
    ("patch", "/api/v1/webhook-endpoints/{id}"),
    ("delete", "/api/v1/webhook-endpoints/{id}"),
    ("post", "/api/v1/webhook-endpoints/{id}/rotate-secret"),
    ("get", "/api/v1/webhook-endpoints/{id}/deliveries"),
    ("post", "/api/v1/webhook-endpoints/{id}/deliveries/{message_id}/replay"),
    ("post", "/api/v1/provider-accounts"),
    ("get", "/api/v1/provider-accounts"),
    ("get", "/api/v1/provider-accounts/{id}"),
    ("patch", "/api/v1/provider-accounts/{id}"),
    ("delete", "/api/v1/provider-accounts/{id}"),
    ("get", "/api/v1/stats"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/api/v1/workspaces"),
    ("post", "/api/v1/workspaces"),
    ("get", "/api/v1/workspaces/{id}"),
    ("patch", "/api/v1/workspaces/{id}"),
    ("get", "/api/v1/keys"),
    ("post", "/api/v1/keys"),
    ("delete", "/api/v1/keys/{id}"),
];

async fn document(app: &TestApp) -> Value {
    // No API key: the document describes the API and holds no data.
    let res = reqwest::get(app.url("/api/v1/openapi.json")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    res.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_openapi_3_1_with_every_route_and_the_error_shape_on_every_error() {
    let app = TestApp::start().await;
    let doc = document(&app).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."), "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = vec![];
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            if op.get("responses").is_some() {
                documented.push((method.clone(), path.clone()));
            }
        }
    }
    for (method, path) in OPERATIONS {
        assert!(documented.contains(&(method.to_string(), path.to_string())), "{method} {path} is not in the document");
    }
    assert_eq!(documented.len(), OPERATIONS.len(), "the document has operations the contract list does not: {documented:?}");

    let error_ref = "#/components/schemas/Error";
    let error = &doc["components"]["schemas"]["Error"];
    assert_eq!(error["required"], serde_json::json!(["error"]), "{error}");
    let codes: Vec<&str> = error["properties"]["error"]["properties"]["code"]["enum"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    for (code, _, _) in dialtone_server::api::CODES {
        assert!(codes.contains(code), "{code} is missing from the Error schema's codes");
    }
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    // The event types an endpoint takes are listed in the document, as the API checks them.
    for schema in ["NewEndpoint", "EndpointPatch"] {
        let events = &doc["components"]["schemas"][schema]["properties"]["events"];
        assert_eq!(events["items"]["enum"], serde_json::json!(dialtone_store::WEBHOOK_EVENT_TYPES), "{schema}: {events}");
        assert_eq!(events["minItems"], 1, "{schema}: {events}");
    }
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let Some(responses) = op["responses"].as_object() else { continue };
            assert!(responses.keys().any(|s| s.starts_with('2')), "{method} {path} documents no success");
            for status in ["400", "404", "4XX", "5XX"] {
                assert!(responses.contains_key(status), "{method} {path} lacks {status}");
            }
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(response["content"]["application/json"]["schema"]["$ref"], error_ref, "{method} {path} {status}: {response}");
                }
            }
            let security = &op["security"];
            if path == "/api/v1/openapi.json" {
                assert!(security.is_null(), "the document itself needs no key");
            } else {
                assert_eq!(security, &serde_json::json!([{ "bearer": [] }]), "{method} {path}");
                assert!(responses.contains_key("401"), "{method} {path} lacks 401");
            }
            let takes_key = op["parameters"].as_array().is_some_and(|ps| ps.iter().any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"));
            assert_eq!(takes_key, matches!(method.as_str(), "post" | "patch"), "{method} {path}: Idempotency-Key on every POST and PATCH only");
        }
    }

    // Operation ids are unique, and a create's links name real operations with the new id.
    let ids: Vec<&str> = paths.values().flat_map(|item| item.as_object().unwrap().values()).filter_map(|op| op["operationId"].as_str()).collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
    assert_eq!(ids.len(), OPERATIONS.len());
    let links = paths["/api/v1/campaigns"]["post"]["responses"]["201"]["links"].as_object().expect("links from a created campaign");
    assert!(links.len() >= 10, "{links:?}");
    for link in links.values() {
        assert!(ids.contains(&link["operationId"].as_str().unwrap()), "{link}");
        assert_eq!(link["parameters"]["id"], "$response.body#/id");
    }
    assert!(links.contains_key("post_campaigns_id_start"), "{links:?}");

    // The bodies the issue names: contacts as CSV or JSON, the export as CSV.
    let upload = &paths["/api/v1/campaigns/{id}/contacts"]["post"]["requestBody"]["content"];
    assert!(upload.get("text/csv").is_some() && upload.get("application/json").is_some(), "{upload}");
    assert!(paths["/api/v1/campaigns/{id}/export.csv"]["get"]["responses"]["200"]["content"].get("text/csv").is_some());
    // Query parameters are the ones the server reads.
    let params: Vec<&str> = paths["/api/v1/calls"]["get"]["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(
        params,
        ["campaign_id", "contact_id", "status", "outcome", "phone", "limit", "before", "created_from", "created_to", "ended_from", "ended_to", "sort"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_served_and_a_documented_list_answers_as_described() {
    let app = TestApp::start().await;
    let doc = document(&app).await;
    for (method, path) in OPERATIONS {
        // A route that exists answers anything but 405 (most refuse the made-up id with 404).
        let concrete = path.replace("{id}", "x").replace("{phone}", "1").replace("{number}", "1");
        let request = app.api(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(), &concrete["/api/v1".len()..]);
        let (status, body) = if *path == "/api/v1/events" {
            // A stream that never ends: its status is the answer.
            (request.send().await.unwrap().status(), serde_json::Value::Null)
        } else {
            send(request).await
        };
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}: {body}");
        assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{method} {path}: {body}");
    }
    // A list answers with the fields its schema requires.
    let (status, body) = app.get("/campaigns").await;
    assert_eq!(status, StatusCode::OK);
    let page = &doc["components"]["schemas"];
    let paged = page.as_object().unwrap().iter().find(|(name, _)| name.starts_with("Paged")).map(|(_, s)| s).expect("a Paged schema");
    for field in paged["required"].as_array().unwrap() {
        assert!(body.get(field.as_str().unwrap()).is_some(), "{field} missing from {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_and_its_assets_come_from_the_binary() {
    let app = TestApp::start().await;
    let res = reqwest::get(app.url("/docs")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = res.text().await.unwrap();
    assert!(!html.contains("http://") && !html.contains("https://"), "the page loads nothing from elsewhere: {html}");
    let srcs: Vec<&str> = html.split(['"', '\'']).filter(|s| s.starts_with("/docs/")).collect();
    assert!(srcs.len() >= 3, "{srcs:?}");
    for src in srcs {
        let res = reqwest::get(app.url(src)).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{src}");
        assert!(!res.bytes().await.unwrap().is_empty(), "{src}");
    }
    let init = reqwest::get(app.url("/docs/docs.js")).await.unwrap().text().await.unwrap();
    assert!(init.contains("/api/v1/openapi.json") && init.contains("validatorUrl: null"), "{init}");
    let (status, body) = send(reqwest::Client::new().get(app.url("/docs/nope.js"))).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

/// The properties `schema` (a component, or an `allOf` of components) requires.
fn required(doc: &Value, schema: &Value) -> Vec<String> {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap();
        return required(doc, &doc["components"]["schemas"][name]);
    }
    let mut out: Vec<String> = schema["required"].as_array().into_iter().flatten().map(|v| v.as_str().unwrap().to_string()).collect();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        out.extend(required(doc, part));
    }
    out
}

fn assert_has_required(doc: &Value, component: &str, item: &Value) {
    let fields = required(doc, &doc["components"]["schemas"][component]);
    assert!(!fields.is_empty(), "{component} requires nothing?");
    for field in fields {
        assert!(item.get(&field).is_some(), "{component}.{field} is required by the document but missing from {item}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_campaigns_answers_carry_every_field_the_document_requires() {
    let app = TestApp::start().await;
    let doc = document(&app).await;
    let id = app.create_campaign(serde_json::json!({})).await;
    app.import_csv(&id, &contacts_csv(4)).await;
    app.act(&id, "start").await;
    let campaign = app.wait_for_status(&id, "completed", secs(30)).await;
    assert_has_required(&doc, "CampaignView", &campaign);
    let calls = app.all_calls(&[("campaign_id", id.as_str())], 100).await;
    assert!(!calls.is_empty());
    for call in &calls {
        assert_has_required(&doc, "Call", call);
    }
    let (status, page) = app.get(&format!("/campaigns/{id}/contacts")).await;
    assert_eq!(status, StatusCode::OK);
    assert_has_required(&doc, "Paged_ContactView", &page);
    for contact in page["data"].as_array().unwrap() {
        assert_has_required(&doc, "ContactView", contact);
        let (_, detail) = app.get(&format!("/contacts/{}", contact["id"].as_str().unwrap())).await;
        assert_has_required(&doc, "ContactDetail", &detail);
    }
    let call_id = calls[0]["id"].as_str().unwrap();
    let (_, call) = app.get(&format!("/calls/{call_id}")).await;
    assert_has_required(&doc, "CallView", &call);
    let (_, stats) = app.get(&format!("/stats?campaign_id={id}")).await;
    assert_has_required(&doc, "Stats", &stats);
}
