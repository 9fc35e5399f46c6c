//! The vendors' official API specs (`tests/fixtures/vendor-specs/`) as checks of HTTP exchanges.
//!
//! The schema validation is the `jsonschema` crate's (JSON Schema Draft 4, the dialect Swagger 2.0
//! and OpenAPI 3.0 schemas extend). What is ours is the glue around it:
//!
//! - **Conversion.** Every schema in a spec becomes plain Draft 4: OpenAPI's `nullable: true` (which
//!   Opsgenie's Swagger file uses too) adds `null` to `type` and `enum`; a Swagger 2.0
//!   `discriminator` becomes, wherever the base type is referred to, "valid against the base and,
//!   for each subtype, not of the subtype's `type` value or valid against the subtype" (subtypes are
//!   the definitions whose `allOf` names the base, their value `x-discriminator-value` or their name);
//!   a Swagger non-body parameter becomes the schema its own fields describe. `$ref`s stay as they
//!   are: a validator is built for `{"$ref": "#<pointer>"}` inside the converted document, so the
//!   crate resolves them (`allOf` included). Not modelled, on purpose: `readOnly`/`writeOnly` (the
//!   PagerDuty spec marks the `id` of the user reference a create must send as read-only), and
//!   OpenAPI 3's object `discriminator` (PagerDuty's only one has no `oneOf` or mapping to pick).
//! - **The HTTP side.** For each [`Exchange`]: the operation (method and path template; the
//!   template with more literal characters wins, so `/v2/schedules/on-calls` beats
//!   `/v2/schedules/{identifier}`); every required query and header parameter present, none sent
//!   that the operation does not declare, each value of its schema's type (query strings read as
//!   integers and booleans where the schema says so; arrays from repeated keys or `csv`); the
//!   security scheme's header (and, for PagerDuty, the `Token token=` form its description gives);
//!   the request's content type and body; the status declared (or `default`); the answer's content
//!   type declared and its body valid against that status's schema, or empty where none is
//!   declared.
//!
//! PagerDuty declares `Accept` and `Content-Type` as required header parameters of every
//! operation. OpenAPI 3.0 tells tools to ignore parameter definitions of those names; they are
//! checked all the same (the vendor wrote them on purpose, and issue 13 §1 asks for them). A
//! `Content-Type` value is compared by its media type, parameters (`; charset=…`) aside.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Map, Value};

use super::convert;
use super::exchange::{Answer, Exchange};

/// The vendor a spec describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vendor {
    /// Opsgenie's Swagger 2.0 schedule subset.
    Opsgenie,
    /// PagerDuty's OpenAPI 3.0 schedules-and-users excerpt.
    PagerDuty,
    /// JSM Operations: an OpenAPI 3.0 document written from the reference (no official spec is
    /// in `shared/vendor-specs/`; `jsm/SOURCE.txt` says how).
    Jsm,
}

impl Vendor {
    /// Every vendor.
    pub const ALL: [Vendor; 3] = [Vendor::Opsgenie, Vendor::PagerDuty, Vendor::Jsm];

    /// The vendor's name.
    pub fn name(self) -> &'static str {
        match self {
            Vendor::Opsgenie => "Opsgenie",
            Vendor::PagerDuty => "PagerDuty",
            Vendor::Jsm => "JSM Operations",
        }
    }

    /// The spec file under `tests/fixtures/vendor-specs/`.
    fn fixture(self) -> &'static str {
        match self {
            Vendor::Opsgenie => "opsgenie/schedule-subset.swagger.json",
            Vendor::PagerDuty => "pagerduty/openapiv3-rest-schedules-users.excerpt.json",
            Vendor::Jsm => "jsm/jsm-ops-schedules.reference.openapi.json",
        }
    }
}

/// Which half of an exchange a violation is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The request a client sent.
    Request,
    /// The answer a server gave.
    Answer,
}

/// What a violation breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// No operation of the spec has this method and path.
    UnknownOperation,
    /// A required parameter (query or path) is missing.
    MissingParameter,
    /// A query parameter the operation does not declare.
    UndeclaredParameter,
    /// A parameter's value is not what its schema says.
    BadParameter,
    /// A required header parameter is missing.
    MissingHeader,
    /// A header parameter's value is not what its schema says.
    BadHeader,
    /// No credential in the header the security scheme names, or not in the form it describes.
    Authorization,
    /// The request's `Content-Type` is not one the operation consumes.
    RequestContentType,
    /// The request body is missing, undeclared, or not valid against its schema.
    RequestBody,
    /// The status is not one the operation declares (and it has no `default`).
    UndeclaredStatus,
    /// The answer's `Content-Type` is not one declared for its status.
    AnswerContentType,
    /// The answer's body is missing, undeclared, not JSON, or not valid against its schema.
    AnswerBody,
    /// A behaviour the spec documents in words (a parameter's description), checked by a test.
    Behaviour,
}

/// One way an exchange breaks a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The spec's vendor.
    pub vendor: Vendor,
    /// Request or answer.
    pub side: Side,
    /// What it breaks.
    pub rule: Rule,
    /// The request's method.
    pub method: String,
    /// The spec's path template when the operation is known, else the path sent.
    pub path: String,
    /// The spec's `operationId`, when known.
    pub operation: Option<String>,
    /// The answer's status, for answer violations.
    pub status: Option<u16>,
    /// Where: a JSON pointer into the body, a parameter or header name.
    pub location: String,
    /// What is wrong.
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let side = match self.side {
            Side::Request => "request",
            Side::Answer => "answer",
        };
        write!(
            f,
            "{} {side} {} {}",
            self.vendor.name(),
            self.method,
            self.path
        )?;
        if let Some(status) = self.status {
            write!(f, " {status}")?;
        }
        write!(f, ": {:?}", self.rule)?;
        if !self.location.is_empty() {
            write!(f, " at {}", self.location)?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// Where a parameter travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum In {
    Path,
    Query,
    Header,
}

/// How an array parameter is written in a query string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Collection {
    /// One value (the schema is not an array).
    Single,
    /// The key repeated, one value each (OpenAPI `explode: true`, Swagger `multi`).
    Multi,
    /// One value, items joined by this character (Swagger `csv`, `ssv`, `tsv`, `pipes`).
    Joined(char),
}

/// A schema: a JSON pointer into the converted document, or a standalone value (Swagger's
/// non-body parameters, which hold no `$ref`).
#[derive(Debug, Clone)]
enum SchemaRef {
    Pointer(String),
    Inline(Value),
}

#[derive(Debug, Clone)]
struct Param {
    name: String,
    location: In,
    required: bool,
    schema: SchemaRef,
    collection: Collection,
}

/// A request body or an answer: media types, each with its schema if it has one.
#[derive(Debug, Clone)]
struct Content {
    required: bool,
    media: Vec<(String, Option<SchemaRef>)>,
}

/// One segment of a path template: literal text, or a parameter between literal text.
#[derive(Debug, Clone)]
enum Segment {
    Literal(String),
    Param { prefix: String, suffix: String },
}

/// One operation of a spec, everything resolved.
#[derive(Debug, Clone)]
pub struct Operation {
    /// The `operationId`.
    pub id: String,
    /// Upper-case method.
    pub method: String,
    /// The path template, e.g. `/schedules/{id}/overrides`.
    pub template: String,
    segments: Vec<Segment>,
    params: Vec<Param>,
    body: Option<Content>,
    /// Status (`"200"`, `"4XX"`, `"default"`) → what the answer holds.
    responses: Vec<(String, Content)>,
    /// Alternatives (any one suffices) of header names that must all carry a credential.
    security: Vec<Vec<String>>,
    /// Swagger's `produces`: what an `Accept` header must allow (OpenAPI 3: empty, not checked).
    produces: Vec<String>,
}

impl Operation {
    /// The statuses the operation declares.
    pub fn statuses(&self) -> Vec<&str> {
        self.responses.iter().map(|(s, _)| s.as_str()).collect()
    }

    /// How many literal characters the template has: the most specific template wins.
    fn specificity(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => l.len() + 1,
                Segment::Param { prefix, suffix } => prefix.len() + suffix.len(),
            })
            .sum()
    }

    fn matches(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        parts.len() == self.segments.len()
            && self.segments.iter().zip(&parts).all(|(s, p)| match s {
                Segment::Literal(l) => l == p,
                Segment::Param { prefix, suffix } => {
                    p.len() > prefix.len() + suffix.len()
                        && p.starts_with(prefix.as_str())
                        && p.ends_with(suffix.as_str())
                }
            })
    }
}

/// A vendor's spec, converted, with its operations and a cache of compiled validators.
pub struct Spec {
    vendor: Vendor,
    /// The spec as published.
    original: Value,
    /// The spec with every schema converted to plain Draft 4.
    converted: Value,
    operations: Vec<Operation>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
    /// The form of the credential, where the security scheme's description gives one.
    auth_prefix: Option<String>,
}

impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spec")
            .field("vendor", &self.vendor)
            .field("operations", &self.operations.len())
            .finish_non_exhaustive()
    }
}

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];

/// A path template's segments: `/schedules/{id}.ics` → `schedules`, `{id}` with suffix `.ics`.
fn segments(template: &str) -> Vec<Segment> {
    template
        .trim_start_matches('/')
        .split('/')
        .map(|s| match (s.find('{'), s.find('}')) {
            (Some(a), Some(b)) if a < b => Segment::Param {
                prefix: s[..a].to_owned(),
                suffix: s[b + 1..].to_owned(),
            },
            _ => Segment::Literal(s.to_owned()),
        })
        .collect()
}

/// `~` and `/` escaped for a JSON pointer token.
fn token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// A JSON pointer as a URI fragment: characters a fragment may not hold percent-encoded.
fn fragment(pointer: &str) -> String {
    let mut out = String::with_capacity(pointer.len());
    for c in pointer.chars() {
        if c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/".contains(c) {
            out.push(c);
        } else {
            let mut bytes = [0; 4];
            for b in c.encode_utf8(&mut bytes).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// The media type of a `Content-Type` or `Accept` value: parameters dropped, lower case.
pub fn essence(media: &str) -> String {
    media
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn is_json(media: &str) -> bool {
    let e = essence(media);
    e == "application/json" || e.ends_with("+json")
}

impl Spec {
    /// The spec of `vendor`, loaded and converted once per test process.
    pub fn of(vendor: Vendor) -> &'static Spec {
        static OPSGENIE: OnceLock<Spec> = OnceLock::new();
        static PAGERDUTY: OnceLock<Spec> = OnceLock::new();
        static JSM: OnceLock<Spec> = OnceLock::new();
        let cell = match vendor {
            Vendor::Opsgenie => &OPSGENIE,
            Vendor::PagerDuty => &PAGERDUTY,
            Vendor::Jsm => &JSM,
        };
        cell.get_or_init(|| Spec::load(vendor))
    }

    fn load(vendor: Vendor) -> Spec {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/vendor-specs")
            .join(vendor.fixture());
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let original: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        let openapi3 = original.get("openapi").is_some();
        let converted = convert::document(&original, openapi3);
        let mut spec = Spec {
            vendor,
            original,
            converted,
            operations: Vec::new(),
            validators: Mutex::new(HashMap::new()),
            auth_prefix: None,
        };
        spec.operations = spec.read_operations(openapi3);
        spec.auth_prefix = spec.read_auth_prefix();
        spec
    }

    /// The vendor.
    pub fn vendor(&self) -> Vendor {
        self.vendor
    }

    /// The spec as published.
    pub fn original(&self) -> &Value {
        &self.original
    }

    /// Every operation.
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    /// Follows local `$ref`s in the converted document until a value that is not one.
    fn resolve<'a>(&'a self, mut value: &'a Value) -> &'a Value {
        for _ in 0..32 {
            match value.get("$ref").and_then(Value::as_str) {
                Some(r) if r.starts_with('#') => match self.converted.pointer(&r[1..]) {
                    Some(target) => value = target,
                    None => panic!("{}: dangling $ref {r}", self.vendor.name()),
                },
                _ => return value,
            }
        }
        panic!("{}: $ref cycle", self.vendor.name())
    }

    /// The pointer a `$ref` names, or this node's own pointer.
    fn pointer_of(&self, node_pointer: &str) -> String {
        let mut pointer = node_pointer.to_owned();
        for _ in 0..32 {
            let node = self.converted.pointer(&pointer).unwrap_or(&Value::Null);
            match node.get("$ref").and_then(Value::as_str) {
                Some(r) if r.starts_with('#') => pointer = r[1..].to_owned(),
                _ => return pointer,
            }
        }
        pointer
    }

    fn read_operations(&self, openapi3: bool) -> Vec<Operation> {
        let doc = &self.converted;
        let mut operations = Vec::new();
        let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
            return operations;
        };
        for (template, item) in paths {
            for method in METHODS {
                let Some(op) = item.get(method) else {
                    continue;
                };
                let op_pointer = format!("/paths/{}/{method}", token(template));
                operations.push(self.read_operation(
                    template,
                    method,
                    op,
                    &op_pointer,
                    item,
                    openapi3,
                ));
            }
        }
        operations
    }

    /// One operation, everything resolved: its template, parameters, body, answers, credential.
    fn read_operation(
        &self,
        template: &str,
        method: &str,
        op: &Value,
        op_pointer: &str,
        item: &Value,
        openapi3: bool,
    ) -> Operation {
        let (params, swagger_body) = self.read_parameters(op, op_pointer, item, openapi3);
        let body = if openapi3 {
            self.read_request_body(op, op_pointer)
        } else {
            swagger_body
        };
        // OpenAPI 3 gives media types per answer; Swagger 2.0 one `produces` list.
        let produces = if openapi3 {
            Vec::new()
        } else {
            self.strings(op, "produces").unwrap_or_default()
        };
        Operation {
            id: op["operationId"].as_str().unwrap_or("").to_owned(),
            method: method.to_ascii_uppercase(),
            template: template.to_owned(),
            segments: segments(template),
            params,
            body,
            responses: self.read_responses(op, op_pointer, openapi3, &produces),
            security: self.read_security(op),
            produces,
        }
    }

    /// A list of strings the operation, or else the document, holds (`consumes`, `produces`).
    fn strings(&self, op: &Value, key: &str) -> Option<Vec<String>> {
        let list = op
            .get(key)
            .or_else(|| self.converted.get(key))?
            .as_array()?;
        Some(
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        )
    }

    /// The path's parameters, then the operation's (which override by name and place); and
    /// Swagger's body parameter, as the request body.
    fn read_parameters(
        &self,
        op: &Value,
        op_pointer: &str,
        item: &Value,
        openapi3: bool,
    ) -> (Vec<Param>, Option<Content>) {
        let path_pointer = op_pointer.rsplit_once('/').map_or("", |(p, _)| p);
        let mut params: Vec<Param> = Vec::new();
        let mut body = None;
        for (owner, owner_pointer) in [(item, path_pointer), (op, op_pointer)] {
            let list = owner.get("parameters").and_then(Value::as_array);
            for (i, p) in list.into_iter().flatten().enumerate() {
                let pointer = self.pointer_of(&format!("{owner_pointer}/parameters/{i}"));
                let p = self.resolve(p);
                let location = match p["in"].as_str() {
                    Some("path") => In::Path,
                    Some("query") => In::Query,
                    Some("header") => In::Header,
                    Some("body") => {
                        let schema = SchemaRef::Pointer(format!("{pointer}/schema"));
                        let consumes = self
                            .strings(op, "consumes")
                            .unwrap_or_else(|| vec!["application/json".to_owned()]);
                        body = Some(Content {
                            required: p["required"].as_bool().unwrap_or(false),
                            media: consumes
                                .into_iter()
                                .map(|m| (m, Some(schema.clone())))
                                .collect(),
                        });
                        continue;
                    }
                    _ => continue, // cookies and form data: none in these specs
                };
                let param = self.read_parameter(p, &pointer, location, openapi3);
                params.retain(|q| !(q.name == param.name && q.location == location));
                params.push(param);
            }
        }
        (params, body)
    }

    /// One parameter: its schema, and how an array of it is written.
    fn read_parameter(&self, p: &Value, pointer: &str, location: In, openapi3: bool) -> Param {
        let (schema, collection) = if openapi3 {
            let schema_pointer = format!("{pointer}/schema");
            let resolved = self.resolve(
                self.converted
                    .pointer(&schema_pointer)
                    .unwrap_or(&Value::Null),
            );
            // Query parameters default to `form` style, exploded (OpenAPI 3.0 §4.7.12.2).
            let explode = p["explode"].as_bool().unwrap_or(true);
            let collection = match (resolved["type"] == "array", explode) {
                (false, _) => Collection::Single,
                (true, true) => Collection::Multi,
                (true, false) => Collection::Joined(','),
            };
            (SchemaRef::Pointer(schema_pointer), collection)
        } else {
            let collection = match (p["type"] == "array", p["collectionFormat"].as_str()) {
                (false, _) => Collection::Single,
                (true, Some("multi")) => Collection::Multi,
                (true, Some("ssv")) => Collection::Joined(' '),
                (true, Some("tsv")) => Collection::Joined('\t'),
                (true, Some("pipes")) => Collection::Joined('|'),
                (true, _) => Collection::Joined(','), // csv, the default
            };
            (SchemaRef::Inline(convert::swagger_parameter(p)), collection)
        };
        Param {
            name: p["name"].as_str().unwrap_or("").to_owned(),
            location,
            required: p["required"].as_bool().unwrap_or(location == In::Path),
            schema,
            collection,
        }
    }

    /// OpenAPI 3's `requestBody`.
    fn read_request_body(&self, op: &Value, op_pointer: &str) -> Option<Content> {
        let rb = op.get("requestBody")?;
        let pointer = self.pointer_of(&format!("{op_pointer}/requestBody"));
        let rb = self.resolve(rb);
        Some(Content {
            required: rb["required"].as_bool().unwrap_or(false),
            media: self.media(rb, &pointer),
        })
    }

    /// Status → what the answer holds.
    fn read_responses(
        &self,
        op: &Value,
        op_pointer: &str,
        openapi3: bool,
        produces: &[String],
    ) -> Vec<(String, Content)> {
        let map = op.get("responses").and_then(Value::as_object);
        map.into_iter()
            .flatten()
            .map(|(status, r)| {
                let pointer = self.pointer_of(&format!("{op_pointer}/responses/{}", token(status)));
                let r = self.resolve(r);
                let media = if openapi3 {
                    self.media(r, &pointer)
                } else if r.get("schema").is_some() {
                    // Swagger 2.0: a schema, in each of the `produces` media types.
                    let schema = SchemaRef::Pointer(format!("{pointer}/schema"));
                    produces
                        .iter()
                        .map(|m| (m.clone(), Some(schema.clone())))
                        .collect()
                } else {
                    Vec::new()
                };
                let content = Content {
                    required: false,
                    media,
                };
                (status.clone(), content)
            })
            .collect()
    }

    /// The security requirements (any one suffices) as the headers that must each carry a
    /// credential: an API key's header, or `Authorization` for HTTP authentication (JSM's Basic).
    fn read_security(&self, op: &Value) -> Vec<Vec<String>> {
        let doc = &self.converted;
        let header = |scheme: &str| {
            let def = doc
                .pointer(&format!("/components/securitySchemes/{}", token(scheme)))
                .or_else(|| doc.pointer(&format!("/securityDefinitions/{}", token(scheme))))?;
            match def["type"].as_str() {
                Some("apiKey") if def["in"] == "header" => {
                    Some(def["name"].as_str().unwrap_or("").to_owned())
                }
                Some("http") => Some("Authorization".to_owned()),
                _ => None,
            }
        };
        let alternatives = op
            .get("security")
            .or_else(|| doc.get("security"))
            .and_then(Value::as_array);
        alternatives
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
            .map(|requirement| requirement.keys().filter_map(|s| header(s)).collect())
            .collect()
    }

    /// OpenAPI 3's `content`: each media type and its schema.
    fn media(&self, owner: &Value, owner_pointer: &str) -> Vec<(String, Option<SchemaRef>)> {
        owner
            .get("content")
            .and_then(Value::as_object)
            .map(|content| {
                content
                    .iter()
                    .map(|(media, m)| {
                        let schema = m.get("schema").map(|_| {
                            SchemaRef::Pointer(format!(
                                "{owner_pointer}/content/{}/schema",
                                token(media)
                            ))
                        });
                        (media.clone(), schema)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The credential's form where a header security scheme's description gives one in backticks,
    /// as PagerDuty's does: "The API Key with format `Token token=<API_KEY>`" → `Token token=`;
    /// for HTTP authentication, its scheme (`Basic `).
    fn read_auth_prefix(&self) -> Option<String> {
        let schemes = self
            .original
            .pointer("/components/securitySchemes")
            .or_else(|| self.original.get("securityDefinitions"))?
            .as_object()?;
        schemes.values().find_map(|s| {
            if s["type"] == "http" {
                let scheme = s["scheme"].as_str()?;
                let mut chars = scheme.chars();
                let first = chars.next()?.to_ascii_uppercase();
                return Some(format!("{first}{} ", chars.as_str().to_ascii_lowercase()));
            }
            let description = s["description"].as_str()?;
            let quoted = description.split('`').nth(1)?;
            let prefix = quoted.split('<').next()?;
            (!prefix.is_empty() && quoted.contains('<')).then(|| prefix.to_owned())
        })
    }

    /// The credential form the security scheme describes, if it describes one.
    pub fn auth_prefix(&self) -> Option<&str> {
        self.auth_prefix.as_deref()
    }

    /// The operation for a method and a path, if the spec has one.
    pub fn find(&self, method: &str, path: &str) -> Option<&Operation> {
        self.operations
            .iter()
            .filter(|o| o.method.eq_ignore_ascii_case(method) && o.matches(path))
            .max_by_key(|o| o.specificity())
    }

    fn validator(&self, schema: &SchemaRef) -> Arc<jsonschema::Validator> {
        let key = match schema {
            SchemaRef::Pointer(p) => p.clone(),
            SchemaRef::Inline(v) => format!("inline:{v}"),
        };
        let mut cache = self.validators.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = cache.get(&key) {
            return Arc::clone(v);
        }
        let root = match schema {
            SchemaRef::Pointer(p) => {
                assert!(
                    self.converted.pointer(p).is_some(),
                    "{}: no schema at {p}",
                    self.vendor.name()
                );
                // The whole converted document with a `$ref` at its root: Draft 4 ignores the
                // siblings of a `$ref`, and every `$ref` inside resolves in the same document.
                let mut root = self.converted.clone();
                root["$ref"] = Value::String(format!("#{}", fragment(p)));
                root
            }
            SchemaRef::Inline(v) => v.clone(),
        };
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| {
                panic!(
                    "{}: the schema at {key} does not compile: {e}",
                    self.vendor.name()
                )
            });
        let validator = Arc::new(validator);
        cache.insert(key, Arc::clone(&validator));
        validator
    }

    /// Validates `instance` against the schema at `pointer` (into the converted document, e.g.
    /// `/definitions/Recipient`): each error's place in the instance and message.
    pub fn check_schema(&self, pointer: &str, instance: &Value) -> Vec<(String, String)> {
        self.errors(&SchemaRef::Pointer(pointer.to_owned()), instance)
    }

    fn errors(&self, schema: &SchemaRef, instance: &Value) -> Vec<(String, String)> {
        self.validator(schema)
            .iter_errors(instance)
            .map(|e| (e.instance_path().to_string(), e.to_string()))
            .collect()
    }

    /// Every way `exchange` breaks the spec: the request, then the answer.
    pub fn check(&self, exchange: &Exchange) -> Vec<Violation> {
        let path = exchange.path().to_owned();
        let violation =
            |side, rule, operation: Option<&Operation>, status, location: &str, detail: String| {
                Violation {
                    vendor: self.vendor,
                    side,
                    rule,
                    method: exchange.method.clone(),
                    path: operation.map_or(path.clone(), |o| o.template.clone()),
                    operation: operation.map(|o| o.id.clone()),
                    status,
                    location: location.to_owned(),
                    detail,
                }
            };
        let Some(op) = self.find(&exchange.method, &path) else {
            let others: Vec<&str> = self
                .operations
                .iter()
                .filter(|o| o.matches(&path))
                .map(|o| o.method.as_str())
                .collect();
            let detail = if others.is_empty() {
                "no path of the spec matches".to_owned()
            } else {
                format!("the path allows only {}", others.join(", "))
            };
            return vec![violation(
                Side::Request,
                Rule::UnknownOperation,
                None,
                None,
                "",
                detail,
            )];
        };
        let mut found = Vec::new();
        let mut push = |side, rule, status, location: &str, detail: String| {
            found.push(violation(side, rule, Some(op), status, location, detail));
        };
        for (rule, location, detail) in self.check_request(op, exchange) {
            push(Side::Request, rule, None, &location, detail);
        }
        if let Some(answer) = &exchange.answer {
            for (rule, location, detail) in self.check_answer(op, answer) {
                push(Side::Answer, rule, Some(answer.status), &location, detail);
            }
        }
        found
    }

    /// The request's violations: (rule, where, what).
    fn check_request(&self, op: &Operation, exchange: &Exchange) -> Vec<(Rule, String, String)> {
        let mut found = self.check_query(op, exchange);
        found.extend(self.check_headers(op, exchange));
        found.extend(self.check_credential(op, exchange));
        found.extend(self.check_request_body(op, exchange));
        found
    }

    /// Every query parameter declared, the required ones present, each of its schema.
    fn check_query(&self, op: &Operation, exchange: &Exchange) -> Vec<(Rule, String, String)> {
        let query = exchange.query();
        let mut found: Vec<(Rule, String, String)> = Vec::new();
        for (name, _) in &query {
            let declared = op
                .params
                .iter()
                .any(|p| p.location == In::Query && &p.name == name);
            if !declared && !found.iter().any(|(_, l, _)| l == name) {
                let detail = format!("{} does not declare it", op.id);
                found.push((Rule::UndeclaredParameter, name.clone(), detail));
            }
        }
        for p in op.params.iter().filter(|p| p.location == In::Query) {
            let values: Vec<&str> = query
                .iter()
                .filter(|(k, _)| k == &p.name)
                .map(|(_, v)| v.as_str())
                .collect();
            if values.is_empty() && p.required {
                found.push((
                    Rule::MissingParameter,
                    p.name.clone(),
                    "required".to_owned(),
                ));
            }
            if !values.is_empty() {
                for (location, detail) in self.check_query_values(p, &values) {
                    found.push((Rule::BadParameter, location, detail));
                }
            }
        }
        found
    }

    /// The header parameters (required ones present, each of its schema; a `Content-Type` by
    /// its media type), and, for Swagger, an `Accept` that allows what the operation produces.
    fn check_headers(&self, op: &Operation, exchange: &Exchange) -> Vec<(Rule, String, String)> {
        let mut found = Vec::new();
        for p in op.params.iter().filter(|p| p.location == In::Header) {
            let Some(value) = exchange.header(&p.name) else {
                if p.required {
                    found.push((Rule::MissingHeader, p.name.clone(), "required".to_owned()));
                }
                continue;
            };
            let value = if p.name.eq_ignore_ascii_case("content-type") {
                essence(value)
            } else {
                value.to_owned()
            };
            for (_, message) in self.errors(&p.schema, &Value::String(value)) {
                found.push((Rule::BadHeader, p.name.clone(), message));
            }
        }
        if let Some(accept) = exchange.header("accept") {
            if !op.produces.is_empty() && !accepts(accept, &op.produces) {
                let detail = format!("`{accept}` allows none of {:?}", op.produces);
                found.push((Rule::BadHeader, "Accept".to_owned(), detail));
            }
        }
        found
    }

    /// A credential in the header of one security requirement, in the form its scheme
    /// describes.
    fn check_credential(&self, op: &Operation, exchange: &Exchange) -> Vec<(Rule, String, String)> {
        if op.security.is_empty() {
            return Vec::new();
        }
        let satisfied = op.security.iter().any(|headers| {
            headers
                .iter()
                .all(|h| exchange.header(h).is_some_and(|v| !v.trim().is_empty()))
        });
        if !satisfied {
            let names: Vec<String> = op.security.iter().flatten().cloned().collect();
            return vec![(
                Rule::Authorization,
                names.join(" or "),
                "no credential".to_owned(),
            )];
        }
        match (self.auth_prefix(), exchange.header("authorization")) {
            (Some(prefix), Some(value)) if !value.starts_with(prefix) => vec![(
                Rule::Authorization,
                "Authorization".to_owned(),
                format!("not of the form `{prefix}<key>` the security scheme describes"),
            )],
            _ => Vec::new(),
        }
    }

    /// A body where one is declared (required ones present), of a declared media type, valid
    /// against its schema; none where none is declared.
    fn check_request_body(
        &self,
        op: &Operation,
        exchange: &Exchange,
    ) -> Vec<(Rule, String, String)> {
        let body = match (&op.body, exchange.body.is_empty()) {
            (None, false) => {
                let detail = format!("{} declares no body", op.id);
                return vec![(Rule::RequestBody, String::new(), detail)];
            }
            (Some(body), true) if body.required => {
                let detail = "required, none sent".to_owned();
                return vec![(Rule::RequestBody, String::new(), detail)];
            }
            (None, true) | (Some(_), true) => return Vec::new(),
            (Some(body), false) => body,
        };
        let content_type = exchange.header("content-type");
        let media =
            content_type.and_then(|ct| body.media.iter().find(|(m, _)| essence(m) == essence(ct)));
        let Some((media, schema)) = media else {
            let declared: Vec<&String> = body.media.iter().map(|(m, _)| m).collect();
            let detail = format!(
                "{:?} is not one of {declared:?}",
                content_type.unwrap_or("(none)")
            );
            return vec![(Rule::RequestContentType, "Content-Type".to_owned(), detail)];
        };
        let (true, Some(schema)) = (is_json(media), schema) else {
            return Vec::new();
        };
        match serde_json::from_slice::<Value>(&exchange.body) {
            Ok(value) => self
                .errors(schema, &value)
                .into_iter()
                .map(|(location, message)| (Rule::RequestBody, location, message))
                .collect(),
            Err(e) => vec![(Rule::RequestBody, String::new(), format!("not JSON: {e}"))],
        }
    }

    /// A query parameter's values (one per occurrence of its name), read as its schema's type.
    fn check_query_values(&self, p: &Param, values: &[&str]) -> Vec<(String, String)> {
        let schema = match &p.schema {
            SchemaRef::Pointer(pointer) => self
                .resolve(self.converted.pointer(pointer).unwrap_or(&Value::Null))
                .clone(),
            SchemaRef::Inline(v) => v.clone(),
        };
        let mut found = Vec::new();
        let instances: Vec<Value> = match p.collection {
            Collection::Single => {
                if values.len() > 1 {
                    found.push((
                        p.name.clone(),
                        format!("sent {} times; its schema is not an array", values.len()),
                    ));
                }
                values.iter().map(|v| typed(&schema, v)).collect()
            }
            Collection::Multi => {
                let items = schema.get("items").cloned().unwrap_or(Value::Null);
                vec![Value::Array(
                    values.iter().map(|v| typed(&items, v)).collect(),
                )]
            }
            Collection::Joined(separator) => {
                if values.len() > 1 {
                    found.push((
                        p.name.clone(),
                        format!(
                            "sent {} times; it is one {separator:?}-joined value",
                            values.len()
                        ),
                    ));
                }
                let items = schema.get("items").cloned().unwrap_or(Value::Null);
                values
                    .iter()
                    .map(|v| Value::Array(v.split(separator).map(|i| typed(&items, i)).collect()))
                    .collect()
            }
        };
        for instance in instances {
            for (location, message) in self.errors(&p.schema, &instance) {
                found.push((format!("{}{location}", p.name), message));
            }
        }
        found
    }

    /// The answer's violations: its status declared, then its content.
    fn check_answer(&self, op: &Operation, answer: &Answer) -> Vec<(Rule, String, String)> {
        let status = answer.status.to_string();
        let range = format!("{}XX", &status[..1]);
        let declared = [status.as_str(), &range, "default"].iter().find_map(|key| {
            op.responses
                .iter()
                .find(|(s, _)| s.eq_ignore_ascii_case(key))
        });
        if let Some((_, content)) = declared {
            return self.check_answer_content(content, answer);
        }
        let mut found = vec![(
            Rule::UndeclaredStatus,
            String::new(),
            format!("{} declares {:?}", op.id, op.statuses()),
        )];
        // A success the spec declares under another code (PagerDuty's list of overrides: 201)
        // still has its body checked, against the one success the spec describes.
        let successes: Vec<&Content> = op
            .responses
            .iter()
            .filter(|(s, c)| s.starts_with('2') && !c.media.is_empty())
            .map(|(_, c)| c)
            .collect();
        if let (2, [only]) = (answer.status / 100, successes.as_slice()) {
            found.extend(self.check_answer_content(only, answer));
        }
        found
    }

    /// A body where one is declared, none where none is; of a declared content type; valid
    /// against its schema.
    fn check_answer_content(
        &self,
        content: &Content,
        answer: &Answer,
    ) -> Vec<(Rule, String, String)> {
        let content_type = answer.header("content-type");
        match (content.media.is_empty(), answer.body.is_empty()) {
            (true, true) => return Vec::new(),
            (true, false) => {
                let start = String::from_utf8_lossy(&answer.body[..answer.body.len().min(120)]);
                let detail = format!(
                    "a body ({}) where the spec declares none: {start}",
                    content_type.unwrap_or("no Content-Type")
                );
                return vec![(Rule::AnswerBody, String::new(), detail)];
            }
            (false, true) => {
                let detail = "no body where the spec declares one".to_owned();
                return vec![(Rule::AnswerBody, String::new(), detail)];
            }
            (false, false) => {}
        }
        let mut found = Vec::new();
        let media =
            content_type.and_then(|ct| content.media.iter().find(|(m, _)| media_matches(m, ct)));
        if media.is_none() {
            let declared: Vec<&String> = content.media.iter().map(|(m, _)| m).collect();
            let detail = format!(
                "{:?} is not one of {declared:?}",
                content_type.unwrap_or("(none)")
            );
            found.push((Rule::AnswerContentType, "Content-Type".to_owned(), detail));
        }
        // The body is checked against the declared JSON schema whenever it is JSON, whatever the
        // header says; a body the header calls JSON that is not is a violation of its own.
        let schema = media
            .or_else(|| content.media.iter().find(|(m, _)| is_json(m)))
            .and_then(|(m, s)| is_json(m).then_some(s.as_ref()).flatten());
        match serde_json::from_slice::<Value>(&answer.body) {
            Ok(value) => {
                for (location, message) in
                    schema.map(|s| self.errors(s, &value)).unwrap_or_default()
                {
                    found.push((Rule::AnswerBody, location, message));
                }
            }
            Err(e) if media.is_some_and(|(m, _)| is_json(m)) => {
                found.push((Rule::AnswerBody, String::new(), format!("not JSON: {e}")));
            }
            Err(_) => {}
        }
        found
    }
}

/// Whether an answer's `Content-Type` is the declared media type (or within a declared range).
fn media_matches(declared: &str, actual: &str) -> bool {
    let (d, a) = (essence(declared), essence(actual));
    d == a
        || d == "*/*"
        || d.strip_suffix("/*")
            .is_some_and(|t| a.split('/').next() == Some(t))
}

/// Whether an `Accept` header allows one of these media types.
fn accepts(accept: &str, produces: &[String]) -> bool {
    accept.split(',').any(|range| {
        let range = essence(range);
        produces.iter().any(|p| media_matches(&range, p))
    })
}

/// A query-string value as the JSON its schema's type reads it as (left a string where it does
/// not parse, so that the schema reports the mismatch).
fn typed(schema: &Value, raw: &str) -> Value {
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if types.contains(&"integer") {
        if let Ok(i) = raw.parse::<i64>() {
            return json!(i);
        }
    }
    if types.contains(&"number") {
        if let Ok(n) = raw.parse::<f64>() {
            return json!(n);
        }
    }
    if types.contains(&"boolean") {
        match raw {
            "true" => return json!(true),
            "false" => return json!(false),
            _ => {}
        }
    }
    Value::String(raw.to_owned())
}
