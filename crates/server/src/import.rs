//! Contact import from CSV or a JSON array. Numbers are parsed to E.164 here, at the edge;
//! a bad row is reported with its line number and reason and the rest are imported. A
//! fault in the file itself (no phone column, an unterminated quote) refuses the whole file.
//!
//! CSV as people really export it: the delimiter (`,` `;` tab) is read off the header line,
//! header names are compared after [`normalize_header`], line numbers count CRLF, LF and
//! CR-only line ends alike, a UTF-8 byte-order mark is ignored, and extensions written after
//! a number (`ext. 22`, `x22`, `;ext=22`, `#22`) or in an `extension` column are kept.

use dialtone_core::{contact_timezone, parse_with_extension, Extension, PhoneNumber, ProviderKind};
use dialtone_store::{NewContact, RejectedRow, Variables};
use serde::Serialize;
use std::collections::VecDeque;
use std::io::{self, Read};

/// Header names accepted for the phone column, in the form [`normalize_header`] gives them;
/// the first in this order wins when a file has several (`Phone` before `Mobile Phone`).
/// They cover the exports of Google Contacts (`Phone 1 - Value`), Outlook (`Mobile Phone`),
/// HubSpot and Salesforce (`Phone Number`, `Mobile`) and telecom lists (`msisdn`).
pub const PHONE_COLUMNS: &[&str] = &[
    "phone",
    "phone number",
    "number",
    "mobile",
    "mobile phone",
    "mobile number",
    "mobile phone number",
    "cell",
    "cell phone",
    "telephone",
    "telephone number",
    "tel",
    "msisdn",
    "phone 1 value",
];

/// Header names accepted for the contact's name (optional), normalised.
pub const NAME_COLUMNS: &[&str] = &["name", "full name", "contact name"];

/// Header names accepted for the contact's IANA time zone (optional), normalised.
pub const TIMEZONE_COLUMNS: &[&str] = &["timezone", "time zone", "tz"];

/// Header names accepted for a separate extension column (optional), normalised.
pub const EXTENSION_COLUMNS: &[&str] = &["extension", "ext", "phone extension", "phone ext"];

/// A quoted field running over more lines than this is taken for a quote that was never
/// closed (a stray `"` pairing with another one far below), not for a long note.
pub const MAX_QUOTED_LINES: u64 = 100;

/// Why an extension cannot be kept on a provider that has no way to dial one.
pub const NO_EXTENSIONS: &str = "this number has an extension, and Exotel cannot dial extensions (its connect API \
    sends no digits after the call connects); import it on a Vapi or Twilio campaign";

/// Whether calls through `provider` can dial an extension after connecting: Vapi sends
/// `customer.extension`, Twilio `SendDigits`; Exotel's connect API has no such parameter.
pub fn dials_extensions(provider: ProviderKind) -> bool {
    !matches!(provider, ProviderKind::Exotel)
}

/// Header text as compared with the accepted names: lower case, with every run of spaces,
/// `_`, `-` and `.` made one space and the ends trimmed (`Phone 1 - Value` → `phone 1 value`,
/// `phone_number` → `phone number`).
pub fn normalize_header(h: &str) -> String {
    let lower = h.to_lowercase();
    lower.split(|c: char| c.is_whitespace() || matches!(c, '_' | '-' | '.')).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// The index of the first of `names` (in their order) among `headers`, compared normalised.
fn find_column(headers: &[String], names: &[&str]) -> Option<usize> {
    let normal: Vec<String> = headers.iter().map(|h| normalize_header(h)).collect();
    names.iter().find_map(|n| normal.iter().position(|h| h == n))
}

/// The answer of a contact upload (`POST /campaigns/{id}/contacts`) and of a CSV added to a
/// do-not-call list.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    /// Rows read (the header excluded).
    pub rows: u64,
    pub imported: u64,
    pub rejected_count: u64,
    /// Each rejected row with its line number and reason: the 1,000 lowest lines, in line
    /// order (file by file for a multipart upload of several files).
    pub rejected: Vec<RejectedRow>,
    /// Where the current file's rows start in `rejected` (earlier files stay first).
    #[serde(skip)]
    part_start: usize,
}

/// How many rejected rows an [`ImportReport`] lists (all are counted).
pub const MAX_LISTED_REJECTS: usize = 1000;

/// A multipart contact upload, as the OpenAPI document describes it: one or more `file`
/// parts, each a CSV (other parts are read and ignored).
#[derive(utoipa::ToSchema)]
pub struct ContactsUpload {
    /// A CSV with a header row and a phone column.
    #[allow(dead_code)]
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

impl ImportReport {
    /// Counts a rejected row and lists it in line order. A chunk's duplicates are found by
    /// the store after the chunk's own bad rows were listed, so rows arrive out of order: each
    /// is inserted at its place, and once the list is full a lower line pushes out the highest.
    pub fn reject(&mut self, row: RejectedRow) {
        self.rejected_count += 1;
        let at = self.part_start + self.rejected[self.part_start..].partition_point(|r| r.line <= row.line);
        if self.rejected.len() < MAX_LISTED_REJECTS {
            self.rejected.insert(at, row);
        } else if at < self.rejected.len() {
            self.rejected.pop();
            self.rejected.insert(at, row);
        }
    }

    /// The rows of the next file of a multipart upload follow: its lines start again at 1,
    /// and are listed after the earlier files'.
    pub fn next_file(&mut self) {
        self.part_start = self.rejected.len();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the CSV has no header row")]
    NoHeader,
    #[error("no phone column: the header has {}; a phone column is named one of {} (case, spaces, `_`, `-` and `.` do not matter)",
        quoted(seen), PHONE_COLUMNS.join(", "))]
    NoPhoneColumn { seen: Vec<String> },
    #[error("unterminated quote: the quoted field opened on line {line} is never closed")]
    UnterminatedQuote { line: u64 },
    #[error("unterminated quote: the quoted field opened on line {line} runs past {MAX_QUOTED_LINES} lines")]
    QuotedFieldTooLong { line: u64 },
    #[error("the file is UTF-16 text; save it as CSV UTF-8")]
    Utf16,
    #[error("header column {column}: {}", crate::api::error::NUL_MESSAGE)]
    NulInHeader { column: usize },
    #[error("CSV is unreadable: {0}")]
    Csv(#[from] csv::Error),
    #[error("reading the upload failed: {0}")]
    Io(io::Error),
    #[error("JSON body must be an array of contact objects: {0}")]
    Json(String),
}

impl ImportError {
    /// The line a fault is on, for error details.
    pub fn line(&self) -> Option<u64> {
        match self {
            Self::UnterminatedQuote { line } | Self::QuotedFieldTooLong { line } => Some(*line),
            _ => None,
        }
    }
}

fn quoted(seen: &[String]) -> String {
    if seen.iter().all(|h| h.is_empty()) {
        return "no named columns".into();
    }
    seen.iter().map(|h| format!("{h:?}")).collect::<Vec<_>>().join(", ")
}

/// The first line is read whole (up to this much) to choose the delimiter.
const SNIFF_MAX: usize = 64 * 1024;

/// Reads the header line of `input` and chooses the delimiter: whichever of `,` `;` tab
/// appears most often outside quotes (ties in that order; `,` when none does, a one-column
/// file). Returns the bytes read, without a UTF-8 byte-order mark, to be read again.
/// Hand-written: CSV crates take the delimiter as given, and this rule is a few lines.
fn sniff<R: Read>(input: &mut R) -> Result<(Vec<u8>, u8), ImportError> {
    let mut head = Vec::new();
    let mut buf = [0u8; 8192];
    while head.len() < SNIFF_MAX && !head.iter().any(|&b| b == b'\n' || b == b'\r') {
        let n = input.read(&mut buf).map_err(ImportError::Io)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
        return Err(ImportError::Utf16);
    }
    if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
        head.drain(..3);
    }
    let line_end = head.iter().position(|&b| b == b'\n' || b == b'\r').unwrap_or(head.len());
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0)];
    let mut in_quotes = false;
    for &b in &head[..line_end] {
        if b == b'"' {
            in_quotes = !in_quotes;
        } else if !in_quotes {
            if let Some(c) = counts.iter_mut().find(|(d, _)| *d == b) {
                c.1 += 1;
            }
        }
    }
    // `max_by_key` keeps the last of equals: reverse so ties go to the earlier delimiter.
    let delimiter = counts.iter().rev().max_by_key(|(_, n)| *n).filter(|(_, n)| *n > 0).map_or(b',', |(d, _)| *d);
    Ok((head, delimiter))
}

#[derive(Clone, Copy, PartialEq)]
enum QuoteState {
    FieldStart,
    Unquoted,
    Quoted,
    /// A `"` inside a quoted field: the end of the field, or the first of `""`.
    QuotedQuote,
}

/// The input as the CSV reader sees it, watched on the way through: it counts line breaks
/// (`\r\n`, `\n` and a lone `\r` are one each; the csv crate's own line count is off in
/// CRLF files) so a record's byte offset can be turned into its line, and it follows the
/// quoting exactly as the csv crate's default dialect does (a `"` opens a quoted field only
/// at the start of a field, `""` inside one is a quote) to catch a quote that never closes,
/// which the csv crate would let run to the end of the file.
struct Tracked<R> {
    inner: R,
    delimiter: u8,
    /// Bytes handed to the CSV reader so far.
    offset: u64,
    /// End offsets of line breaks not yet passed by a record start: a few buffers' worth.
    breaks: VecDeque<u64>,
    /// Line breaks before the last record start looked up.
    passed: u64,
    /// Line breaks seen in all.
    seen: u64,
    last_cr: bool,
    state: QuoteState,
    /// Where the open quoted field began, and the line breaks inside it so far.
    open_line: u64,
    open_breaks: u64,
    fault: Option<ImportError>,
}

impl<R: Read> Tracked<R> {
    fn new(inner: R, delimiter: u8) -> Self {
        Self {
            inner,
            delimiter,
            offset: 0,
            breaks: VecDeque::new(),
            passed: 0,
            seen: 0,
            last_cr: false,
            state: QuoteState::FieldStart,
            open_line: 0,
            open_breaks: 0,
            fault: None,
        }
    }

    /// The 1-based line of byte offset `byte`; offsets must be asked in increasing order.
    fn line_at(&mut self, byte: u64) -> u64 {
        while self.breaks.front().is_some_and(|&end| end <= byte) {
            self.breaks.pop_front();
            self.passed += 1;
        }
        self.passed + 1
    }

    fn fail(&mut self, fault: ImportError) -> io::Error {
        let e = io::Error::new(io::ErrorKind::InvalidData, fault.to_string());
        self.fault = Some(fault);
        e
    }
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.fault.is_some() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "the CSV is broken"));
        }
        let n = self.inner.read(buf)?;
        if n == 0 && self.state == QuoteState::Quoted {
            let line = self.open_line;
            return Err(self.fail(ImportError::UnterminatedQuote { line }));
        }
        for (i, &b) in buf[..n].iter().enumerate() {
            let newline = b == b'\r' || (b == b'\n' && !self.last_cr);
            let ends_field = b == self.delimiter || b == b'\r' || b == b'\n';
            self.last_cr = b == b'\r';
            self.state = match self.state {
                QuoteState::FieldStart if b == b'"' => {
                    self.open_line = self.seen + 1;
                    self.open_breaks = 0;
                    QuoteState::Quoted
                }
                QuoteState::FieldStart | QuoteState::Unquoted | QuoteState::QuotedQuote if ends_field => QuoteState::FieldStart,
                QuoteState::FieldStart | QuoteState::Unquoted => QuoteState::Unquoted,
                QuoteState::QuotedQuote if b == b'"' => QuoteState::Quoted,
                QuoteState::QuotedQuote => QuoteState::Unquoted,
                QuoteState::Quoted if b == b'"' => QuoteState::QuotedQuote,
                QuoteState::Quoted => {
                    if newline {
                        self.open_breaks += 1;
                        if self.open_breaks > MAX_QUOTED_LINES {
                            let line = self.open_line;
                            return Err(self.fail(ImportError::QuotedFieldTooLong { line }));
                        }
                    }
                    QuoteState::Quoted
                }
            };
            if newline {
                self.seen += 1;
                self.breaks.push_back(self.offset + i as u64 + 1);
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

type Input<R> = Tracked<io::Chain<io::Cursor<Vec<u8>>, R>>;

/// Reads CSV rows and hands parsed contacts over in chunks ([`CsvContacts::next_chunk`]).
pub struct CsvContacts<R: Read> {
    reader: csv::Reader<Input<R>>,
    phone: usize,
    name: Option<usize>,
    timezone: Option<usize>,
    extension: Option<usize>,
    headers: Vec<String>,
    region: String,
    campaign_tz: String,
    extensions_dialled: bool,
}

impl<R: Read> CsvContacts<R> {
    /// Reads the header. `campaign_tz` is the zone of contacts whose zone neither the file
    /// nor the number tells. Errors: no header, no phone column (naming the headers seen),
    /// an unterminated quote in the header, UTF-16 text, unreadable input.
    pub fn new(mut input: R, default_region: &str, campaign_tz: &str) -> Result<Self, ImportError> {
        let (head, delimiter) = sniff(&mut input)?;
        let tracked = Tracked::new(io::Cursor::new(head).chain(input), delimiter);
        let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).delimiter(delimiter).from_reader(tracked);
        let headers: Vec<String> = match reader.headers() {
            Ok(h) => h.iter().map(|h| h.trim().to_string()).collect(),
            Err(e) => return Err(reader.get_mut().fault.take().unwrap_or(ImportError::Csv(e))),
        };
        if headers.iter().all(|h| h.is_empty()) {
            return Err(ImportError::NoHeader);
        }
        if let Some(i) = headers.iter().position(|h| h.contains('\0')) {
            return Err(ImportError::NulInHeader { column: i + 1 });
        }
        let phone = find_column(&headers, PHONE_COLUMNS).ok_or_else(|| ImportError::NoPhoneColumn { seen: headers.clone() })?;
        let name = find_column(&headers, NAME_COLUMNS);
        let timezone = find_column(&headers, TIMEZONE_COLUMNS);
        let extension = find_column(&headers, EXTENSION_COLUMNS);
        Ok(Self {
            reader,
            phone,
            name,
            timezone,
            extension,
            headers,
            region: default_region.to_string(),
            campaign_tz: campaign_tz.to_string(),
            extensions_dialled: true,
        })
    }

    /// Rows with an extension are rejected (with [`NO_EXTENSIONS`]) instead of imported: for
    /// campaigns on a provider that cannot dial one ([`dials_extensions`]).
    pub fn refuse_extensions(mut self) -> Self {
        self.extensions_dialled = false;
        self
    }

    /// Bytes of the input read so far (including read-ahead).
    pub fn bytes_read(&self) -> u64 {
        self.reader.get_ref().offset
    }

    /// Reads every remaining record without judging its contents: finds the faults that
    /// refuse the whole file (an unterminated quote, a read error) before anything is stored.
    /// Returns the number of records.
    pub fn scan(&mut self) -> Result<u64, ImportError> {
        let mut record = csv::ByteRecord::new();
        let mut n = 0;
        loop {
            match self.reader.read_byte_record(&mut record) {
                Ok(false) => return Ok(n),
                Ok(true) => n += 1,
                Err(e) => self.fatal(e)?,
            }
        }
    }

    /// A CSV error that refuses the file; `Ok` for one that only spoils its row.
    fn fatal(&mut self, e: csv::Error) -> Result<(), ImportError> {
        if let Some(fault) = self.reader.get_mut().fault.take() {
            return Err(fault);
        }
        match e.into_kind() {
            csv::ErrorKind::Io(io) => Err(ImportError::Io(io)),
            _ => Ok(()),
        }
    }

    /// Parses up to `max` more rows; bad rows go to `report`. Returns `Ok(None)` at the end
    /// of the input, and an error for a fault that refuses the file ([`CsvContacts::scan`]).
    pub fn next_chunk(&mut self, max: usize, report: &mut ImportReport) -> Result<Option<Vec<NewContact>>, ImportError> {
        let mut out = Vec::with_capacity(max.min(1024));
        let mut record = csv::StringRecord::new();
        let mut any = false;
        while out.len() < max {
            match self.reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {
                    any = true;
                    report.rows += 1;
                    let byte = record.position().map_or(0, |p| p.byte());
                    let line = self.reader.get_mut().line_at(byte);
                    match self.row(&record, line) {
                        Ok(c) => out.push(c),
                        Err(reason) => report.reject(RejectedRow { line, reason }),
                    }
                }
                Err(e) => {
                    let byte = e.position().map(|p| p.byte());
                    let message = e.to_string();
                    self.fatal(e)?;
                    any = true;
                    report.rows += 1;
                    let line = match byte {
                        Some(b) => self.reader.get_mut().line_at(b),
                        None => self.reader.get_ref().passed + 1,
                    };
                    report.reject(RejectedRow { line, reason: format!("unreadable row: {message}") });
                }
            }
        }
        Ok(any.then_some(out))
    }

    fn row(&self, record: &csv::StringRecord, line: u64) -> Result<NewContact, String> {
        if record.iter().all(|f| f.is_empty()) {
            return Err("empty row".into());
        }
        if let Some(i) = record.iter().position(|f| f.contains('\0')) {
            let column = self.headers.get(i).filter(|h| !h.is_empty()).cloned().unwrap_or_else(|| format!("column {}", i + 1));
            return Err(format!("{column}: {}", crate::api::error::NUL_MESSAGE));
        }
        let raw = record.get(self.phone).unwrap_or("");
        let column = self.extension.and_then(|i| record.get(i)).unwrap_or("");
        let (phone, extension) = phone_and_extension(raw, column, &self.region, self.extensions_dialled)?;
        let name = self.name.and_then(|i| record.get(i)).filter(|s| !s.is_empty()).map(str::to_string);
        let explicit = self.timezone.and_then(|i| record.get(i));
        let zone = contact_timezone(explicit, &phone, &self.campaign_tz).map_err(|e| format!("timezone: {e}"))?;
        let mut variables = Variables::new();
        for (i, value) in record.iter().enumerate() {
            if i == self.phone || Some(i) == self.name || Some(i) == self.timezone || Some(i) == self.extension {
                continue;
            }
            if let Some(key) = self.headers.get(i).filter(|k| !k.is_empty()) {
                variables.insert(key.clone(), value.into());
            }
        }
        Ok(NewContact { phone, extension, name, variables, timezone: Some(zone), line })
    }
}

/// The number of a row and its extension, from the phone text (`… ext. 22`) and an
/// extension column (`column`, blank when absent). The two must agree when both are given.
fn phone_and_extension(raw: &str, column: &str, region: &str, dialled: bool) -> Result<(PhoneNumber, Option<Extension>), String> {
    let (phone, inline) = parse_with_extension(raw, region).map_err(|e| format!("invalid phone number {raw:?}: {e}"))?;
    let given = Extension::parse(column).map_err(|e| format!("invalid extension {column:?}: {e}"))?;
    let extension = match (inline, given) {
        (Some(a), Some(b)) if a != b => return Err(format!("two different extensions: {a} in the number, {b} in the extension column")),
        (a, b) => a.or(b),
    };
    if extension.is_some() && !dialled {
        return Err(NO_EXTENSIONS.into());
    }
    Ok((phone, extension))
}

/// Parses a JSON array of `{"phone": …, "name": …, "variables": {…}, …}`; any other
/// top-level field becomes a variable too. Keys are matched like CSV headers (`Phone Number`
/// and `phone_number` name the phone). Lines are 1-based array positions. `extensions`:
/// whether rows with an extension are kept ([`dials_extensions`]).
pub fn from_json(
    body: &serde_json::Value,
    default_region: &str,
    campaign_tz: &str,
    extensions: bool,
    report: &mut ImportReport,
) -> Result<Vec<NewContact>, ImportError> {
    let items = body.as_array().ok_or_else(|| ImportError::Json("expected a JSON array".into()))?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let line = i as u64 + 1;
        report.rows += 1;
        match json_row(item, default_region, campaign_tz, extensions, line) {
            Ok(c) => out.push(c),
            Err(reason) => report.reject(RejectedRow { line, reason }),
        }
    }
    Ok(out)
}

pub fn json_row(item: &serde_json::Value, region: &str, campaign_tz: &str, extensions: bool, line: u64) -> Result<NewContact, String> {
    use serde_json::Value;
    let obj = item.as_object().ok_or("expected an object")?;
    if obj.is_empty() {
        return Err("empty row".into());
    }
    if let Some(path) = crate::api::error::nul_path(item) {
        return Err(format!("{path}: {}", crate::api::error::NUL_MESSAGE));
    }
    let keys: Vec<String> = obj.keys().cloned().collect();
    let key = |names: &[&str]| find_column(&keys, names).map(|i| keys[i].as_str());
    let phone_key = key(PHONE_COLUMNS).ok_or_else(|| format!("missing field `phone` (or one of {})", PHONE_COLUMNS.join(", ")))?;
    let raw = obj[phone_key].as_str().ok_or_else(|| format!("field `{phone_key}` must be a string"))?;
    let ext_key = key(EXTENSION_COLUMNS);
    let column = match ext_key.map(|k| &obj[k]) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) if n.is_u64() => n.to_string(),
        Some(_) => return Err(format!("field `{}` must be a string of digits", ext_key.unwrap_or("extension"))),
    };
    let (phone, extension) = phone_and_extension(raw, &column, region, extensions)?;
    let name_key = key(NAME_COLUMNS);
    let name = match name_key.map(|k| &obj[k]) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()).filter(|s| !s.is_empty()),
        Some(_) => return Err("field `name` must be a string".into()),
    };
    let mut variables = match obj.get("variables") {
        None | Some(Value::Null) => Variables::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err("field `variables` must be an object".into()),
    };
    let tz_key = key(TIMEZONE_COLUMNS);
    let explicit = match tz_key.map(|k| &obj[k]) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err("field `timezone` must be a string (an IANA zone such as America/New_York)".into()),
    };
    let zone = contact_timezone(explicit, &phone, campaign_tz).map_err(|e| format!("timezone: {e}"))?;
    let taken = [Some(phone_key), name_key, tz_key, ext_key, Some("variables")];
    for (k, v) in obj {
        if !taken.contains(&Some(k.as_str())) {
            variables.insert(k.clone(), v.clone());
        }
    }
    Ok(NewContact { phone, extension, name, variables, timezone: Some(zone), line })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(csv: &[u8]) -> Result<(Vec<NewContact>, ImportReport), ImportError> {
        let mut report = ImportReport::default();
        let mut rows = CsvContacts::new(csv, "US", "UTC")?;
        let mut out = vec![];
        while let Some(chunk) = rows.next_chunk(2, &mut report)? {
            out.extend(chunk);
        }
        Ok((out, report))
    }

    fn all(csv: &str) -> (Vec<NewContact>, ImportReport) {
        read(csv.as_bytes()).unwrap()
    }

    #[test]
    fn a_row_with_a_nul_is_a_bad_row_and_a_header_with_one_refuses_the_file() {
        // What `dialtone import` and both upload routes read: PostgreSQL could not store it.
        let (rows, report) = all("phone,name,city\n+14155550100,\"a\u{0}b\",x\n+14155550101,ok,\u{0}\n+14155550102,ok,y\n");
        assert_eq!(rows.len(), 1);
        let rejected: Vec<(u64, &str)> = report.rejected.iter().map(|r| (r.line, r.reason.as_str())).collect();
        assert_eq!(rejected, [(2, "name: must not contain a NUL character (U+0000)"), (3, "city: must not contain a NUL character (U+0000)")]);
        assert!(matches!(read(b"phone,ci\0ty\n+14155550100,x\n"), Err(ImportError::NulInHeader { column: 2 })));
    }

    fn lines(report: &ImportReport) -> Vec<u64> {
        report.rejected.iter().map(|r| r.line).collect()
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
    fn line_numbers_are_right_whatever_the_line_ends() {
        for end in ["\r\n", "\n", "\r"] {
            let csv = ["phone,name", "4155552671,A", "bad,B", "4155552672,C", "also bad,D", ""].join(end);
            let (rows, report) = all(&csv);
            assert_eq!(lines(&report), [3, 5], "line end {end:?}");
            assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 4], "line end {end:?}");
        }
    }

    #[test]
    fn quoted_fields_with_line_breaks_count_every_line() {
        for end in ["\r\n", "\n"] {
            let csv = ["phone,note", "4155552671,\"two", "lines\"", "bad,x", "4155552672,\"a", "b", "c\"", "worse,y", ""].join(end);
            let (rows, report) = all(&csv);
            assert_eq!(rows[0].variables["note"], format!("two{end}lines"));
            assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 5], "line end {end:?}");
            assert_eq!(lines(&report), [4, 8], "line end {end:?}");
        }
    }

    #[test]
    fn the_delimiter_is_read_off_the_header() {
        for (csv, what) in [
            ("phone;name\n4155552671;Ana\n", "semicolon"),
            ("phone\tname\n4155552671\tAna\n", "tab"),
            ("phone,name\n4155552671,Ana\n", "comma"),
            ("\"Name; Surname\",phone\nAna,4155552671\n", "quoted semicolon"),
        ] {
            let (rows, report) = all(csv);
            assert_eq!(report.rejected_count, 0, "{what}: {report:?}");
            assert_eq!(rows[0].phone.as_str(), "+14155552671", "{what}");
        }
        let (rows, _) = all("phone;name\n4155552671;Ana\n");
        assert_eq!(rows[0].name.as_deref(), Some("Ana"));
        // A one-column file has no delimiter at all.
        assert_eq!(all("Phone\n4155552671\n").0.len(), 1);
    }

    #[test]
    fn exported_phone_headers_are_recognised() {
        for header in [
            "Phone Number",
            "Mobile Phone",
            "Phone 1 - Value",
            "Mobile",
            "Cell",
            "Telephone",
            "Tel",
            "msisdn",
            "MSISDN",
            "phone",
            "number",
            "phone_number",
            "PHONE-NUMBER",
            " mobile ",
            "Phone.Number",
        ] {
            let (rows, report) = all(&format!("Name,{header:?}\nAna,4155552671\n"));
            assert_eq!((rows.len(), report.rejected_count), (1, 0), "{header}");
        }
        // Several phone-like columns: the list's order decides, not the file's.
        let (rows, _) = all("Mobile Phone,Phone\n4155552671,4155552672\n");
        assert_eq!(rows[0].phone.as_str(), "+14155552672");
        assert!(rows[0].variables.contains_key("Mobile Phone"));
        // Name and zone headers are read the same way.
        let (rows, _) = all("Full Name,Phone Number,Time_Zone\nAna,4155552671,Europe/Paris\n");
        assert_eq!(rows[0].name.as_deref(), Some("Ana"));
        assert_eq!(rows[0].timezone.as_ref().unwrap().timezone, "Europe/Paris");
    }

    #[test]
    fn without_a_phone_column_the_error_lists_what_it_saw_and_what_it_accepts() {
        let Err(e) = CsvContacts::new("name,email\nA,a@b\n".as_bytes(), "US", "UTC") else { panic!("accepted") };
        let ImportError::NoPhoneColumn { seen } = &e else { panic!("{e}") };
        assert_eq!(seen, &["name", "email"]);
        let message = e.to_string();
        assert!(message.contains("\"name\", \"email\"") && message.contains("phone 1 value") && message.contains("msisdn"), "{message}");
    }

    #[test]
    fn an_unterminated_quote_is_reported_with_the_line_it_opened_on() {
        let csv = "phone,name\r\n4155552671,Ana\r\n4155552672,\"Bo\r\n4155552673,Cy\r\n4155552674,Di\r\n";
        assert!(matches!(read(csv.as_bytes()), Err(ImportError::UnterminatedQuote { line: 3 })));
        // A stray quote that pairs with another far below would swallow the rows between.
        let mut far = String::from("phone,name\n4155552671,\"Ana\n");
        for i in 0..150 {
            far.push_str(&format!("41555{:05},x\n", 10000 + i));
        }
        far.push_str("4155550000,\"Zed\"\n");
        assert!(matches!(read(far.as_bytes()), Err(ImportError::QuotedFieldTooLong { line: 2 })));
        // The scan pass finds it too, before anything is stored.
        let mut rows = CsvContacts::new(csv.as_bytes(), "US", "UTC").unwrap();
        assert!(matches!(rows.scan(), Err(ImportError::UnterminatedQuote { line: 3 })));
        // Quotes that close, doubled quotes and quotes inside a field are fine.
        let (rows, report) = all("phone,name\n4155552671,\"Ana \"\"A\"\" B\"\n4155552672,Bo \"the\" second\n");
        assert_eq!((rows.len(), report.rejected_count), (2, 0));
        assert_eq!(rows[0].name.as_deref(), Some("Ana \"A\" B"));
    }

    #[test]
    fn extensions_are_kept_from_the_number_or_their_own_column() {
        let (rows, report) = all(
            "phone,name\n\"(415) 555-2671 ext. 22\",A\n4155552672 x23,B\n+14155552673;ext=24,C\n4155552674#25,D\n4155552675 extension 26,E\n4155552676,F\n",
        );
        assert_eq!(report.rejected_count, 0, "{report:?}");
        let exts: Vec<Option<&str>> = rows.iter().map(|r| r.extension.as_ref().map(|e| e.as_str())).collect();
        assert_eq!(exts, [Some("22"), Some("23"), Some("24"), Some("25"), Some("26"), None]);
        assert_eq!(rows[0].phone.as_str(), "+14155552671");
        let (rows, report) = all("Phone,Ext\n4155552671,22\n4155552672 x5,6\n4155552673,abc\n");
        assert_eq!(rows[0].extension.as_ref().unwrap().as_str(), "22");
        assert!(!rows[0].variables.contains_key("Ext"));
        assert_eq!(lines(&report), [3, 4]);
        assert!(report.rejected[0].reason.contains("two different extensions"), "{report:?}");
    }

    #[test]
    fn a_provider_that_cannot_dial_extensions_gets_those_rows_rejected_not_stripped() {
        let mut rows = CsvContacts::new("phone\n4155552671 x22\n4155552672\n".as_bytes(), "US", "UTC").unwrap().refuse_extensions();
        let mut report = ImportReport::default();
        let chunk = rows.next_chunk(10, &mut report).unwrap().unwrap();
        assert_eq!(chunk.len(), 1);
        assert_eq!(report.rejected, [RejectedRow { line: 2, reason: NO_EXTENSIONS.into() }]);
    }

    #[test]
    fn excel_byte_order_marks_are_ignored_and_utf16_is_named() {
        let (rows, _) = read(b"\xEF\xBB\xBFPhone;Name\r\n4155552671;Ana\r\n").unwrap();
        assert_eq!(rows[0].name.as_deref(), Some("Ana"));
        assert!(matches!(CsvContacts::new(&b"\xFF\xFEp\0h\0"[..], "US", "UTC"), Err(ImportError::Utf16)));
    }

    #[test]
    fn json_rows_are_parsed_with_extra_fields_as_variables() {
        let body = serde_json::json!([
            {"phone": "+14155552671", "name": "Ana", "variables": {"plan": "gold"}, "city": "SF"},
            {"name": "no phone"},
            {"number": "4155552672"},
            {"Phone Number": "4155552673 ext. 9", "Full Name": "Cy", "Time Zone": "Europe/Paris"},
            {"mobile": "4155552674", "extension": 31}
        ]);
        let mut report = ImportReport::default();
        let rows = from_json(&body, "US", "UTC", true, &mut report).unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].variables["plan"], "gold");
        assert_eq!(rows[0].variables["city"], "SF");
        assert_eq!(report.rejected[0].line, 2);
        assert!(report.rejected[0].reason.contains("phone"));
        assert_eq!(rows[2].extension.as_ref().unwrap().as_str(), "9");
        assert_eq!(rows[2].name.as_deref(), Some("Cy"));
        assert_eq!(rows[2].timezone.as_ref().unwrap().timezone, "Europe/Paris");
        assert!(rows[2].variables.is_empty(), "{:?}", rows[2].variables);
        assert_eq!(rows[3].extension.as_ref().unwrap().as_str(), "31");
    }

    #[test]
    fn rejected_rows_are_listed_in_line_order_and_the_lowest_lines_are_kept() {
        let row = |line| RejectedRow { line, reason: format!("r{line}") };
        let mut report = ImportReport::default();
        // A chunk's own faults, then its duplicates found by the store.
        for line in [3, 9, 5, 2, 7] {
            report.reject(row(line));
        }
        assert_eq!(report.rejected.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 3, 5, 7, 9]);
        // A second file of the same upload: after the first one's rows.
        report.next_file();
        for line in [4, 1] {
            report.reject(row(line));
        }
        assert_eq!(report.rejected.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 3, 5, 7, 9, 1, 4]);

        let mut full = ImportReport::default();
        for line in (10..10 + MAX_LISTED_REJECTS as u64).rev() {
            full.reject(row(line));
        }
        full.reject(row(2_000_000));
        full.reject(row(1));
        assert_eq!(full.rejected_count, MAX_LISTED_REJECTS as u64 + 2);
        assert_eq!(full.rejected.len(), MAX_LISTED_REJECTS);
        assert_eq!((full.rejected[0].line, full.rejected[MAX_LISTED_REJECTS - 1].line), (1, 8 + MAX_LISTED_REJECTS as u64));
        assert!(full.rejected.windows(2).all(|w| w[0].line <= w[1].line));
    }
}
