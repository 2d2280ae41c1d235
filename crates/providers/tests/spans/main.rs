//! What the providers' spans say: every field they declare is filled once it is known, so
//! a log line inside a provider call names the provider's call id.

#[allow(dead_code)]
#[path = "../common/fake.rs"]
mod fake;
#[path = "../common/spans.rs"]
mod spans;

use dialtone_core::{CallId, CampaignId, ProviderKind};
use dialtone_providers::exotel::{ExotelConfig, ExotelProvider};
use dialtone_providers::twilio::{TwilioConfig, TwilioProvider};
use dialtone_providers::vapi::{VapiConfig, VapiProvider};
use dialtone_providers::{PlaceCall, Provider};
use fake::{canned, serve};
use secrecy::SecretString;
use serde_json::json;
use spans::Spans;

fn a_call() -> PlaceCall {
    PlaceCall {
        call_id: CallId::new(),
        campaign_id: CampaignId::new(),
        assistant_id: "asst_123".into(),
        phone_number_id: "+15005550006".into(),
        customer_number: "+14155551234".into(),
        extension: None,
        customer_name: None,
        variables: Default::default(),
        media: None,
    }
}

/// Places one call and checks the `place_call` span carries our ids and the provider's.
async fn place_call_span_names_the_provider_call(provider: &dyn Provider, provider_call_id: &str) {
    let (spans, _guard) = Spans::capture();
    let call = a_call();
    assert_eq!(provider.place_call(&call).await.unwrap().provider_call_id, provider_call_id);
    let placed = spans.named("place_call");
    assert_eq!(placed.len(), 1, "{:?}: {placed:?}", provider.kind());
    let fields = &placed[0].fields;
    assert_eq!(fields.get("provider_call_id").map(String::as_str), Some(provider_call_id), "{:?}: {fields:?}", provider.kind());
    assert_eq!(fields.get("call_id").map(String::as_str), Some(call.call_id.as_str()));
    assert_eq!(fields.get("campaign_id").map(String::as_str), Some(call.campaign_id.as_str()));
}

#[tokio::test(flavor = "current_thread")]
async fn every_provider_records_the_provider_call_id_on_its_place_call_span() {
    let (base, _) = serve(vec![canned(201, json!({"id": "019a-call", "status": "queued"}))]).await;
    let vapi = VapiProvider::new(VapiConfig { base_url: base, kind: ProviderKind::Vapi, ..VapiConfig::new(SecretString::from("key")) });
    place_call_span_names_the_provider_call(&vapi, "019a-call").await;

    let (base, _) = serve(vec![canned(201, json!({"sid": "CA42", "status": "queued"}))]).await;
    let mut tc = TwilioConfig::new("AC1", SecretString::from("token"), "https://dialer.example.com");
    tc.base_url = base;
    tc.twiml_url = Some("https://dialer.example.com/twiml".into());
    place_call_span_names_the_provider_call(&TwilioProvider::new(tc), "CA42").await;

    let (base, _) = serve(vec![canned(200, json!({"Call": {"Sid": "80bf3a", "Status": "in-progress"}}))]).await;
    let mut ec = ExotelConfig::new("acme1", "key", SecretString::from("token"), "https://dialer.example.com", SecretString::from("cb_1"));
    ec.base_url = base;
    ec.flow_url = Some("https://dialer.example.com/flow".into());
    place_call_span_names_the_provider_call(&ExotelProvider::new(ec), "80bf3a").await;
}

#[tokio::test(flavor = "current_thread")]
async fn get_call_and_hang_up_spans_name_the_call_they_ask_about() {
    let (base, _) = serve(vec![canned(200, json!({"id": "019a", "status": "in-progress"}))]).await;
    let vapi = VapiProvider::new(VapiConfig { base_url: base, ..VapiConfig::new(SecretString::from("key")) });
    let (spans, _guard) = Spans::capture();
    vapi.get_call("019a").await.unwrap();
    let _ = vapi.hang_up("019a").await;
    for name in ["get_call", "hang_up"] {
        let found = spans.named(name);
        assert_eq!(found.len(), 1, "{name}: {found:?}");
        assert_eq!(found[0].fields.get("provider_call_id").map(String::as_str), Some("019a"), "{name}: {found:?}");
    }
}
