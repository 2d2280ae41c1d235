//! Captures the spans a test makes, with every field recorded on them (at creation or later
//! through `Span::record`): an empty declared field never shows up.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

#[derive(Debug, Clone)]
pub struct CapturedSpan {
    pub name: &'static str,
    pub fields: BTreeMap<String, String>,
}

/// The spans seen so far, in the order they were made.
#[derive(Clone, Default)]
pub struct Spans(Arc<Mutex<Vec<CapturedSpan>>>);

impl Spans {
    /// Installs a capturing subscriber for this thread until the guard drops (use a
    /// current-thread runtime so that every span of the test is made on this thread).
    pub fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let spans = Spans::default();
        let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(spans.clone()));
        (spans, guard)
    }

    pub fn named(&self, name: &str) -> Vec<CapturedSpan> {
        self.0.lock().unwrap().iter().filter(|s| s.name == name).cloned().collect()
    }
}

struct Index(usize);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().to_string(), format!("{value:?}"));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut span = CapturedSpan { name: attrs.metadata().name(), fields: BTreeMap::new() };
        attrs.record(&mut Fields(&mut span.fields));
        let index = {
            let mut all = self.0.lock().unwrap();
            all.push(span);
            all.len() - 1
        };
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Index(index));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let Some(Index(index)) = span.extensions().get::<Index>().map(|i| Index(i.0)) else { return };
        values.record(&mut Fields(&mut self.0.lock().unwrap()[index].fields));
    }
}
