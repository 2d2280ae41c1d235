//! Contact import from CSV or a JSON array. Numbers are parsed to E.164 here, at the edge;
//! a bad row is reported with its line number and reason and the rest are imported.

use dialtone_core::{contact_timezone, PhoneNumber};
use dialtone_store::{NewContact, RejectedRow, Variables};
use serde::Serialize;
use std::io::Read;

/// Header names accepted for the phone column (case-insensitive).
pub const PHONE_COLUMNS: &[&str] = &["phone", "number", "phone_number", "mobile"];

/// Header names accepted for the contact's IANA time zone (optional).
pub const TIMEZONE_COLUMNS: &[&str] = &["timezone", "time_zone", "tz"];

#[derive(Debug, Default, Serialize)]
pub struct ImportReport {
    /// Rows read (the header excluded).
    pub rows: u64,
    pub imported: u64,
    pub rejected_count: u64,
    /// Each rejected row with its line number and reason (the first 1,000).
    pub rejected: Vec<RejectedRow>,
}

impl ImportReport {
    pub fn reject(&mut self, row: RejectedRow) {
        self.rejected_count += 1;
        if self.rejected.len() < 1000 {
            self.rejected.push(row);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the CSV has no header row")]
    NoHeader,
    #[error("no phone column: the header needs one of {}", PHONE_COLUMNS.join(", "))]
    NoPhoneColumn,
    #[error("CSV is unreadable: {0}")]
    Csv(#[from] csv::Error),
    #[error("JSON body must be an array of contact objects: {0}")]
    Json(String),
}

/// Reads CSV rows and hands parsed contacts to `sink` in chunks of `chunk` rows.
/// `progress` is told the bytes consumed so far after each chunk.
pub struct CsvContacts<R: Read> {
    reader: csv::Reader<R>,
    phone: usize,
    name: Option<usize>,
    timezone: Option<usize>,
    headers: Vec<String>,
    region: String,
    campaign_tz: String,
}

impl<R: Read> CsvContacts<R> {
    /// `campaign_tz` is the zone of contacts whose zone neither the file nor the number tells.
    pub fn new(input: R, default_region: &str, campaign_tz: &str) -> Result<Self, ImportError> {
        let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(input);
        let headers: Vec<String> = reader.headers()?.iter().map(|h| h.trim().to_string()).collect();
        if headers.iter().all(|h| h.is_empty()) {
            return Err(ImportError::NoHeader);
        }
        let find = |names: &[&str]| headers.iter().position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)));
        let phone = find(PHONE_COLUMNS).ok_or(ImportError::NoPhoneColumn)?;
        let name = find(&["name"]);
        let timezone = find(TIMEZONE_COLUMNS);
        Ok(Self { reader, phone, name, timezone, headers, region: default_region.to_string(), campaign_tz: campaign_tz.to_string() })
    }

    pub fn bytes_read(&self) -> u64 {
        self.reader.position().byte()
    }

    /// Parses up to `max` more rows. Returns `None` at the end of the input.
    pub fn next_chunk(&mut self, max: usize, report: &mut ImportReport) -> Option<Vec<NewContact>> {
        let mut out = Vec::with_capacity(max);
        let mut record = csv::StringRecord::new();
        let mut any = false;
        while out.len() < max {
            let line = self.reader.position().line();
            match self.reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {
                    any = true;
                    report.rows += 1;
                    let line = record.position().map_or(line, |p| p.line());
                    match self.row(&record, line) {
                        Ok(c) => out.push(c),
                        Err(reason) => report.reject(RejectedRow { line, reason }),
                    }
                }
                Err(e) => {
                    any = true;
                    report.rows += 1;
                    report.reject(RejectedRow { line: e.position().map_or(line, |p| p.line()), reason: format!("unreadable row: {e}") });
                }
            }
        }
        any.then_some(out)
    }

    fn row(&self, record: &csv::StringRecord, line: u64) -> Result<NewContact, String> {
        if record.iter().all(|f| f.is_empty()) {
            return Err("empty row".into());
        }
        let raw = record.get(self.phone).unwrap_or("");
        let phone = PhoneNumber::parse(raw, &self.region).map_err(|e| format!("invalid phone number {raw:?}: {e}"))?;
        let name = self.name.and_then(|i| record.get(i)).filter(|s| !s.is_empty()).map(str::to_string);
        let explicit = self.timezone.and_then(|i| record.get(i));
        let zone = contact_timezone(explicit, &phone, &self.campaign_tz).map_err(|e| format!("timezone: {e}"))?;
        let mut variables = Variables::new();
        for (i, value) in record.iter().enumerate() {
            if i == self.phone || Some(i) == self.name || Some(i) == self.timezone {
                continue;
            }
            if let Some(key) = self.headers.get(i).filter(|k| !k.is_empty()) {
                variables.insert(key.clone(), value.into());
            }
        }
        Ok(NewContact { phone, name, variables, timezone: Some(zone), line })
    }
}

/// Parses a JSON array of `{"phone": …, "name": …, "variables": {…}, …}`; any other
/// top-level field becomes a variable too. Lines are 1-based array positions.
pub fn from_json(body: &serde_json::Value, default_region: &str, campaign_tz: &str, report: &mut ImportReport) -> Result<Vec<NewContact>, ImportError> {
    let items = body.as_array().ok_or_else(|| ImportError::Json("expected a JSON array".into()))?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let line = i as u64 + 1;
        report.rows += 1;
        match json_row(item, default_region, campaign_tz, line) {
            Ok(c) => out.push(c),
            Err(reason) => report.reject(RejectedRow { line, reason }),
        }
    }
    Ok(out)
}

fn json_row(item: &serde_json::Value, region: &str, campaign_tz: &str, line: u64) -> Result<NewContact, String> {
    let obj = item.as_object().ok_or("expected an object")?;
    if obj.is_empty() {
        return Err("empty row".into());
    }
    let raw = PHONE_COLUMNS
        .iter()
        .find_map(|k| obj.get(*k))
        .ok_or_else(|| format!("missing field `phone` (or one of {})", PHONE_COLUMNS.join(", ")))?;
    let raw = raw.as_str().ok_or("field `phone` must be a string")?;
    let phone = PhoneNumber::parse(raw, region).map_err(|e| format!("invalid phone number {raw:?}: {e}"))?;
    let name = match obj.get("name") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.clone()).filter(|s| !s.is_empty()),
        Some(_) => return Err("field `name` must be a string".into()),
    };
    let mut variables = match obj.get("variables") {
        None | Some(serde_json::Value::Null) => Variables::new(),
        Some(serde_json::Value::Object(m)) => m.clone(),
        Some(_) => return Err("field `variables` must be an object".into()),
    };
    let explicit = match TIMEZONE_COLUMNS.iter().find_map(|k| obj.get(*k)) {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err("field `timezone` must be a string (an IANA zone such as America/New_York)".into()),
    };
    let zone = contact_timezone(explicit, &phone, campaign_tz).map_err(|e| format!("timezone: {e}"))?;
    for (k, v) in obj {
        if !PHONE_COLUMNS.contains(&k.as_str()) && !TIMEZONE_COLUMNS.contains(&k.as_str()) && k != "name" && k != "variables" {
            variables.insert(k.clone(), v.clone());
        }
    }
    Ok(NewContact { phone, name, variables, timezone: Some(zone), line })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(csv: &str) -> (Vec<NewContact>, ImportReport) {
        let mut report = ImportReport::default();
        let mut rows = CsvContacts::new(csv.as_bytes(), "US", "UTC").unwrap();
        let mut out = vec![];
        while let Some(chunk) = rows.next_chunk(2, &mut report) {
            out.extend(chunk);
        }
        (out, report)
    }

    #[test]
    fn csv_rows_become_contacts_with_variables() {
        let (rows, report) = all("Name,Mobile,plan\nAna,(415) 555-2671,gold\nBo,+442079460018,silver\n");
        assert_eq!(report.rows, 2);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].phone.as_str(), "+14155552671");
        assert_eq!(rows[0].name.as_deref(), Some("Ana"));
        assert_eq!(rows[0].variables["plan"], "gold");
        assert!(!rows[0].variables.contains_key("Mobile"));
        assert_eq!(rows[1].line, 3);
    }

    #[test]
    fn bad_rows_are_reported_by_line_and_the_rest_imported() {
        let (rows, report) = all("phone,name\n4155552671,A\nnot-a-number,B\n,\n+14155552672,C\n");
        assert_eq!(rows.len(), 2);
        assert_eq!(report.rejected_count, 2);
        assert_eq!(report.rejected[0].line, 3);
        assert!(report.rejected[0].reason.contains("invalid phone number"), "{:?}", report.rejected[0]);
        assert_eq!(report.rejected[1], RejectedRow { line: 4, reason: "empty row".into() });
    }

    #[test]
    fn a_csv_without_a_phone_column_is_refused() {
        assert!(matches!(CsvContacts::new("name,email\nA,a@b\n".as_bytes(), "US", "UTC"), Err(ImportError::NoPhoneColumn)));
    }

    #[test]
    fn json_rows_are_parsed_with_extra_fields_as_variables() {
        let body = serde_json::json!([
            {"phone": "+14155552671", "name": "Ana", "variables": {"plan": "gold"}, "city": "SF"},
            {"name": "no phone"},
            {"number": "4155552672"}
        ]);
        let mut report = ImportReport::default();
        let rows = from_json(&body, "US", "UTC", &mut report).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].variables["plan"], "gold");
        assert_eq!(rows[0].variables["city"], "SF");
        assert_eq!(report.rejected[0].line, 2);
        assert!(report.rejected[0].reason.contains("phone"));
    }
}
