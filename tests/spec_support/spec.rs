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

use super::exchange::Exchange;

/// The vendor a spec describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vendor {
    /// Opsgenie's Swagger 2.0 schedule subset.
    Opsgenie,
    /// PagerDuty's OpenAPI 3.0 schedules-and-users excerpt.
    PagerDuty,
}

impl Vendor {
    /// Both vendors.
    pub const ALL: [Vendor; 2] = [Vendor::Opsgenie, Vendor::PagerDuty];

    /// The vendor's name.
    pub fn name(self) -> &'static str {
        match self {
            Vendor::Opsgenie => "Opsgenie",
            Vendor::PagerDuty => "PagerDuty",
        }
    }

    /// The spec file under `tests/fixtures/vendor-specs/`.
    fn fixture(self) -> &'static str {
        match self {
            Vendor::Opsgenie => "opsgenie/schedule-subset.swagger.json",
            Vendor::PagerDuty => "pagerduty/openapiv3-rest-schedules-users.excerpt.json",
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
        let cell = match vendor {
            Vendor::Opsgenie => &OPSGENIE,
            Vendor::PagerDuty => &PAGERDUTY,
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

    fn read_operation(
        &self,
        template: &str,
        method: &str,
        op: &Value,
        op_pointer: &str,
        item: &Value,
        openapi3: bool,
    ) -> Operation {
        let doc = &self.converted;
        let segments = template
            .trim_start_matches('/')
            .split('/')
            .map(|s| match (s.find('{'), s.find('}')) {
                (Some(a), Some(b)) if a < b => Segment::Param {
                    prefix: s[..a].to_owned(),
                    suffix: s[b + 1..].to_owned(),
                },
                _ => Segment::Literal(s.to_owned()),
            })
            .collect();
        // Path-level parameters, then the operation's (which override by name and place).
        let mut raw_params: Vec<(String, &Value)> = Vec::new();
        let path_pointer = op_pointer.rsplit_once('/').map_or("", |(p, _)| p);
        for (owner, owner_pointer) in [(item, path_pointer), (op, op_pointer)] {
            if let Some(list) = owner.get("parameters").and_then(Value::as_array) {
                for (i, p) in list.iter().enumerate() {
                    let pointer = self.pointer_of(&format!("{owner_pointer}/parameters/{i}"));
                    raw_params.push((pointer, self.resolve(p)));
                }
            }
        }
        let mut params: Vec<Param> = Vec::new();
        let mut body = None;
        for (pointer, p) in raw_params {
            let name = p["name"].as_str().unwrap_or("").to_owned();
            let location = match p["in"].as_str() {
                Some("path") => In::Path,
                Some("query") => In::Query,
                Some("header") => In::Header,
                Some("body") => {
                    // Swagger 2.0: the body is a parameter; its media types are `consumes`.
                    let consumes = op
                        .get("consumes")
                        .or_else(|| doc.get("consumes"))
                        .and_then(Value::as_array)
                        .map(|c| {
                            c.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_else(|| vec!["application/json".to_owned()]);
                    let schema = SchemaRef::Pointer(format!("{pointer}/schema"));
                    body = Some(Content {
                        required: p["required"].as_bool().unwrap_or(false),
                        media: consumes
                            .into_iter()
                            .map(|m: String| (m, Some(schema.clone())))
                            .collect(),
                    });
                    continue;
                }
                _ => continue, // cookies and form data: none in these specs
            };
            let (schema, collection) = if openapi3 {
                let schema_pointer = format!("{pointer}/schema");
                let resolved = self.resolve(doc.pointer(&schema_pointer).unwrap_or(&Value::Null));
                let array = resolved["type"] == "array";
                // Query parameters default to `form` style, exploded (OpenAPI 3.0 §4.7.12.2).
                let explode = p["explode"].as_bool().unwrap_or(true);
                let collection = match (array, explode) {
                    (false, _) => Collection::Single,
                    (true, true) => Collection::Multi,
                    (true, false) => Collection::Joined(','),
                };
                (SchemaRef::Pointer(schema_pointer), collection)
            } else {
                let collection = if p["type"] == "array" {
                    match p["collectionFormat"].as_str().unwrap_or("csv") {
                        "multi" => Collection::Multi,
                        "ssv" => Collection::Joined(' '),
                        "tsv" => Collection::Joined('\t'),
                        "pipes" => Collection::Joined('|'),
                        _ => Collection::Joined(','),
                    }
                } else {
                    Collection::Single
                };
                (SchemaRef::Inline(convert::swagger_parameter(p)), collection)
            };
            params.retain(|q: &Param| !(q.name == name && q.location == location));
            params.push(Param {
                name,
                location,
                required: p["required"].as_bool().unwrap_or(location == In::Path),
                schema,
                collection,
            });
        }
        if openapi3 {
            if let Some(rb) = op.get("requestBody") {
                let pointer = self.pointer_of(&format!("{op_pointer}/requestBody"));
                let rb = self.resolve(rb);
                body = Some(Content {
                    required: rb["required"].as_bool().unwrap_or(false),
                    media: self.media(rb, &pointer),
                });
            }
        }
        let produces: Vec<String> = if openapi3 {
            Vec::new()
        } else {
            op.get("produces")
                .or_else(|| doc.get("produces"))
                .and_then(Value::as_array)
                .map(|c| {
                    c.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut responses = Vec::new();
        if let Some(map) = op.get("responses").and_then(Value::as_object) {
            for (status, r) in map {
                let pointer = self.pointer_of(&format!("{op_pointer}/responses/{}", token(status)));
                let r = self.resolve(r);
                let media = if openapi3 {
                    self.media(r, &pointer)
                } else if r.get("schema").is_some() {
                    let schema = SchemaRef::Pointer(format!("{pointer}/schema"));
                    produces
                        .iter()
                        .map(|m| (m.clone(), Some(schema.clone())))
                        .collect()
                } else {
                    Vec::new()
                };
                responses.push((
                    status.clone(),
                    Content {
                        required: false,
                        media,
                    },
                ));
            }
        }
        let security = op
            .get("security")
            .or_else(|| doc.get("security"))
            .and_then(Value::as_array)
            .map(|alternatives| {
                alternatives
                    .iter()
                    .filter_map(Value::as_object)
                    .map(|req| {
                        req.keys()
                            .filter_map(|scheme| {
                                let def = doc
                                    .pointer(&format!(
                                        "/components/securitySchemes/{}",
                                        token(scheme)
                                    ))
                                    .or_else(|| {
                                        doc.pointer(&format!(
                                            "/securityDefinitions/{}",
                                            token(scheme)
                                        ))
                                    })?;
                                (def["type"] == "apiKey" && def["in"] == "header")
                                    .then(|| def["name"].as_str().unwrap_or("").to_owned())
                            })
                            .collect()
                    })
                    .collect()
            })
            .unwrap_or_default();
        Operation {
            id: op["operationId"].as_str().unwrap_or("").to_owned(),
            method: method.to_ascii_uppercase(),
            template: template.to_owned(),
            segments,
            params,
            body,
            responses,
            security,
            produces,
        }
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
    /// as PagerDuty's does: "The API Key with format `Token token=<API_KEY>`" → `Token token=`.
    fn read_auth_prefix(&self) -> Option<String> {
        let schemes = self
            .original
            .pointer("/components/securitySchemes")
            .or_else(|| self.original.get("securityDefinitions"))?
            .as_object()?;
        schemes.values().find_map(|s| {
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

    fn check_request(&self, op: &Operation, exchange: &Exchange) -> Vec<(Rule, String, String)> {
        let mut found = Vec::new();
        let query = exchange.query();
        // Query parameters.
        for (name, _) in &query {
            let declared = op
                .params
                .iter()
                .any(|p| p.location == In::Query && &p.name == name);
            if !declared
                && !found
                    .iter()
                    .any(|(r, l, _)| *r == Rule::UndeclaredParameter && l == name)
            {
                found.push((
                    Rule::UndeclaredParameter,
                    name.clone(),
                    format!("{} does not declare it", op.id),
                ));
            }
        }
        for p in &op.params {
            match p.location {
                In::Query => {
                    let values: Vec<&str> = query
                        .iter()
                        .filter(|(k, _)| k == &p.name)
                        .map(|(_, v)| v.as_str())
                        .collect();
                    if values.is_empty() {
                        if p.required {
                            found.push((
                                Rule::MissingParameter,
                                p.name.clone(),
                                "required".to_owned(),
                            ));
                        }
                        continue;
                    }
                    for (location, detail) in self.check_query_values(p, &values) {
                        found.push((Rule::BadParameter, location, detail));
                    }
                }
                In::Header => {
                    let Some(value) = exchange.header(&p.name) else {
                        if p.required {
                            found.push((
                                Rule::MissingHeader,
                                p.name.clone(),
                                "required".to_owned(),
                            ));
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
                In::Path => {
                    // Every path parameter here is a plain string; the match already saw it
                    // non-empty.
                }
            }
        }
        // The credential.
        if !op.security.is_empty() {
            let satisfied = op.security.iter().any(|headers| {
                headers
                    .iter()
                    .all(|h| exchange.header(h).is_some_and(|v| !v.trim().is_empty()))
            });
            if !satisfied {
                let names: Vec<String> = op.security.iter().flatten().cloned().collect();
                found.push((
                    Rule::Authorization,
                    names.join(" or "),
                    "no credential".to_owned(),
                ));
            } else if let (Some(prefix), Some(value)) =
                (self.auth_prefix(), exchange.header("authorization"))
            {
                if !value.starts_with(prefix) {
                    found.push((
                        Rule::Authorization,
                        "Authorization".to_owned(),
                        format!("not of the form `{prefix}<key>` the security scheme describes"),
                    ));
                }
            }
        }
        // What the client accepts (Swagger's `produces`).
        if let Some(accept) = exchange.header("accept") {
            if !op.produces.is_empty() && !accepts(accept, &op.produces) {
                found.push((
                    Rule::BadHeader,
                    "Accept".to_owned(),
                    format!("`{accept}` allows none of {:?}", op.produces),
                ));
            }
        }
        // The body.
        let content_type = exchange.header("content-type");
        match (&op.body, exchange.body.is_empty()) {
            (None, false) => {
                found.push((
                    Rule::RequestBody,
                    String::new(),
                    format!("{} declares no body", op.id),
                ));
            }
            (Some(body), true) if body.required => {
                found.push((
                    Rule::RequestBody,
                    String::new(),
                    "required, none sent".to_owned(),
                ));
            }
            (None, true) | (Some(_), true) => {}
            (Some(body), false) => {
                let media = content_type
                    .and_then(|ct| body.media.iter().find(|(m, _)| essence(m) == essence(ct)));
                let Some((media, schema)) = media else {
                    found.push((
                        Rule::RequestContentType,
                        "Content-Type".to_owned(),
                        format!(
                            "{:?} is not one of {:?}",
                            content_type.unwrap_or("(none)"),
                            body.media.iter().map(|(m, _)| m).collect::<Vec<_>>()
                        ),
                    ));
                    return found;
                };
                if let (true, Some(schema)) = (is_json(media), schema) {
                    match serde_json::from_slice::<Value>(&exchange.body) {
                        Ok(value) => {
                            for (location, message) in self.errors(schema, &value) {
                                found.push((Rule::RequestBody, location, message));
                            }
                        }
                        Err(e) => {
                            found.push((Rule::RequestBody, String::new(), format!("not JSON: {e}")))
                        }
                    }
                }
            }
        }
        found
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

    fn check_answer(
        &self,
        op: &Operation,
        answer: &super::exchange::Answer,
    ) -> Vec<(Rule, String, String)> {
        let status = answer.status.to_string();
        let range = format!("{}XX", &status[..1]);
        let declared = op
            .responses
            .iter()
            .find(|(s, _)| *s == status)
            .or_else(|| {
                op.responses
                    .iter()
                    .find(|(s, _)| s.eq_ignore_ascii_case(&range))
            })
            .or_else(|| op.responses.iter().find(|(s, _)| s == "default"));
        let mut found = Vec::new();
        let content = match declared {
            Some((_, content)) => content,
            None => {
                found.push((
                    Rule::UndeclaredStatus,
                    String::new(),
                    format!("{} declares {:?}", op.id, op.statuses()),
                ));
                // A success the spec declares under another code (PagerDuty's list of overrides:
                // 201) still has its body checked, against the one success the spec describes.
                let successes: Vec<&Content> = op
                    .responses
                    .iter()
                    .filter(|(s, c)| s.starts_with('2') && !c.media.is_empty())
                    .map(|(_, c)| c)
                    .collect();
                match (answer.status / 100, successes.as_slice()) {
                    (2, [only]) => *only,
                    _ => return found,
                }
            }
        };
        let content_type = answer.header("content-type");
        if content.media.is_empty() {
            if !answer.body.is_empty() {
                found.push((
                    Rule::AnswerBody,
                    String::new(),
                    format!(
                        "a body ({}) where the spec declares none: {}",
                        content_type.unwrap_or("no Content-Type"),
                        String::from_utf8_lossy(&answer.body[..answer.body.len().min(120)])
                    ),
                ));
            }
            return found;
        }
        if answer.body.is_empty() {
            found.push((
                Rule::AnswerBody,
                String::new(),
                "no body where the spec declares one".to_owned(),
            ));
            return found;
        }
        let media =
            content_type.and_then(|ct| content.media.iter().find(|(m, _)| media_matches(m, ct)));
        if media.is_none() {
            found.push((
                Rule::AnswerContentType,
                "Content-Type".to_owned(),
                format!(
                    "{:?} is not one of {:?}",
                    content_type.unwrap_or("(none)"),
                    content.media.iter().map(|(m, _)| m).collect::<Vec<_>>()
                ),
            ));
        }
        // The body is checked against the declared JSON schema whenever it is JSON, whatever the
        // header says; a body the header calls JSON that is not is a violation of its own.
        let schema = media
            .or_else(|| content.media.iter().find(|(m, _)| is_json(m)))
            .and_then(|(m, s)| is_json(m).then_some(s.as_ref()).flatten());
        match serde_json::from_slice::<Value>(&answer.body) {
            Ok(value) => {
                if let Some(schema) = schema {
                    for (location, message) in self.errors(schema, &value) {
                        found.push((Rule::AnswerBody, location, message));
                    }
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

/// The conversion of Swagger 2.0 and OpenAPI 3.0 schemas into plain JSON Schema Draft 4.
mod convert {
    use super::*;

    /// Where a Swagger polymorphic base's subtypes are: base name → (discriminator value, subtype).
    type Polymorphic = HashMap<String, Vec<(String, String)>>;

    /// The name the wrapper that dispatches on a base's discriminator gets among `definitions`.
    fn dispatching(base: &str) -> String {
        format!("{base}__by_discriminator")
    }

    /// The whole document with every schema converted.
    pub(super) fn document(doc: &Value, openapi3: bool) -> Value {
        let mut out = doc.clone();
        let poly = if openapi3 {
            Polymorphic::new()
        } else {
            polymorphic(doc)
        };
        let ctx = Ctx {
            poly: &poly,
            keep: None,
        };
        if openapi3 {
            for group in ["schemas"] {
                if let Some(map) = out
                    .pointer_mut(&format!("/components/{group}"))
                    .and_then(Value::as_object_mut)
                {
                    for schema in map.values_mut() {
                        schema_node(schema, &ctx);
                    }
                }
            }
            for group in ["parameters", "headers"] {
                if let Some(map) = out
                    .pointer_mut(&format!("/components/{group}"))
                    .and_then(Value::as_object_mut)
                {
                    for p in map.values_mut() {
                        if let Some(s) = p.get_mut("schema") {
                            schema_node(s, &ctx);
                        }
                    }
                }
            }
            for group in ["responses", "requestBodies"] {
                if let Some(map) = out
                    .pointer_mut(&format!("/components/{group}"))
                    .and_then(Value::as_object_mut)
                {
                    for r in map.values_mut() {
                        content(r, &ctx);
                    }
                }
            }
        } else {
            if let Some(map) = out.get_mut("definitions").and_then(Value::as_object_mut) {
                for (name, schema) in map.iter_mut() {
                    let keep = poly
                        .iter()
                        .find(|(_, subs)| subs.iter().any(|(_, s)| s == name))
                        .map(|(base, _)| base.clone());
                    schema_node(
                        schema,
                        &Ctx {
                            poly: &poly,
                            keep: keep.as_deref(),
                        },
                    );
                }
                for (base, subs) in &poly {
                    let mut all_of = vec![json!({"$ref": format!("#/definitions/{base}")})];
                    let property = doc["definitions"][base]["discriminator"]
                        .as_str()
                        .unwrap_or("type");
                    for (value, sub) in subs {
                        all_of.push(json!({"anyOf": [
                            {"properties": {property: {"not": {"enum": [value]}}}},
                            {"$ref": format!("#/definitions/{sub}")},
                        ]}));
                    }
                    map.insert(dispatching(base), json!({"allOf": all_of}));
                }
            }
            for group in ["parameters", "responses"] {
                if let Some(map) = out.get_mut(group).and_then(Value::as_object_mut) {
                    for r in map.values_mut() {
                        if let Some(s) = r.get_mut("schema") {
                            schema_node(s, &ctx);
                        }
                    }
                }
            }
        }
        if let Some(paths) = out.get_mut("paths").and_then(Value::as_object_mut) {
            for item in paths.values_mut() {
                let Some(item) = item.as_object_mut() else {
                    continue;
                };
                for (key, op) in item.iter_mut() {
                    if key == "parameters" {
                        parameters(op, &ctx);
                        continue;
                    }
                    if let Some(ps) = op.get_mut("parameters") {
                        parameters(ps, &ctx);
                    }
                    if let Some(rb) = op.get_mut("requestBody") {
                        content(rb, &ctx);
                    }
                    if let Some(rs) = op.get_mut("responses").and_then(Value::as_object_mut) {
                        for r in rs.values_mut() {
                            content(r, &ctx);
                            if let Some(s) = r.get_mut("schema") {
                                schema_node(s, &ctx);
                            }
                        }
                    }
                }
            }
        }
        out
    }

    /// The bases with a Swagger `discriminator`, and their subtypes.
    fn polymorphic(doc: &Value) -> Polymorphic {
        let mut poly = Polymorphic::new();
        let Some(defs) = doc.get("definitions").and_then(Value::as_object) else {
            return poly;
        };
        for (base, schema) in defs {
            if !schema.get("discriminator").is_some_and(Value::is_string) {
                continue;
            }
            let reference = format!("#/definitions/{base}");
            let mut subs: Vec<(String, String)> = defs
                .iter()
                .filter(|(_, s)| {
                    s["allOf"]
                        .as_array()
                        .is_some_and(|all| all.iter().any(|a| a["$ref"] == reference.as_str()))
                })
                .map(|(name, s)| {
                    let value = s["x-discriminator-value"].as_str().unwrap_or(name);
                    (value.to_owned(), name.clone())
                })
                .collect();
            subs.sort();
            poly.insert(base.clone(), subs);
        }
        poly
    }

    struct Ctx<'a> {
        poly: &'a Polymorphic,
        /// Inside a subtype's definition: the base its top-level `allOf` names, kept as it is (the
        /// subtype *is* the base plus more; dispatching there would loop).
        keep: Option<&'a str>,
    }

    fn parameters(list: &mut Value, ctx: &Ctx<'_>) {
        for p in list.as_array_mut().into_iter().flatten() {
            if let Some(s) = p.get_mut("schema") {
                schema_node(s, ctx);
            }
        }
    }

    /// OpenAPI 3's `content` map (of a response or a request body).
    fn content(owner: &mut Value, ctx: &Ctx<'_>) {
        if let Some(map) = owner.get_mut("content").and_then(Value::as_object_mut) {
            for m in map.values_mut() {
                if let Some(s) = m.get_mut("schema") {
                    schema_node(s, ctx);
                }
            }
        }
        if let Some(map) = owner.get_mut("headers").and_then(Value::as_object_mut) {
            for h in map.values_mut() {
                if let Some(s) = h.get_mut("schema") {
                    schema_node(s, ctx);
                }
            }
        }
    }

    /// Converts one schema and everything under it.
    fn schema_node(node: &mut Value, ctx: &Ctx<'_>) {
        let Some(map) = node.as_object_mut() else {
            return;
        };
        if let Some(Value::String(r)) = map.get_mut("$ref") {
            if let Some(base) = r.strip_prefix("#/definitions/") {
                if ctx.poly.contains_key(base) {
                    *r = format!("#/definitions/{}", dispatching(base));
                }
            }
        }
        for key in ["properties", "patternProperties"] {
            if let Some(props) = map.get_mut(key).and_then(Value::as_object_mut) {
                for p in props.values_mut() {
                    schema_node(p, &Ctx { keep: None, ..*ctx });
                }
            }
        }
        for key in ["additionalProperties", "not", "items"] {
            match map.get_mut(key) {
                Some(Value::Array(items)) => items
                    .iter_mut()
                    .for_each(|i| schema_node(i, &Ctx { keep: None, ..*ctx })),
                Some(v @ Value::Object(_)) => schema_node(v, &Ctx { keep: None, ..*ctx }),
                _ => {}
            }
        }
        for key in ["allOf", "anyOf", "oneOf"] {
            if let Some(Value::Array(items)) = map.get_mut(key) {
                for item in items.iter_mut() {
                    let kept = key == "allOf"
                        && ctx.keep.is_some_and(|base| {
                            item["$ref"] == format!("#/definitions/{base}").as_str()
                        });
                    if !kept {
                        schema_node(item, &Ctx { keep: None, ..*ctx });
                    }
                }
            }
        }
        if map.remove("nullable") == Some(Value::Bool(true)) {
            nullable(node);
        }
    }

    /// `nullable: true` as Draft 4 says it: `null` added to `type` and `enum`; a schema with no
    /// `type` becomes "null, or this".
    fn nullable(node: &mut Value) {
        let Some(map) = node.as_object_mut() else {
            return;
        };
        if let Some(Value::Array(values)) = map.get_mut("enum") {
            if !values.contains(&Value::Null) {
                values.push(Value::Null);
            }
        }
        match map.get_mut("type") {
            Some(Value::String(t)) => {
                let t = t.clone();
                map.insert("type".into(), json!([t, "null"]));
            }
            Some(Value::Array(types)) => {
                if !types.contains(&json!("null")) {
                    types.push(json!("null"));
                }
            }
            _ => {
                let inner = std::mem::take(map);
                *node = json!({"anyOf": [{"type": "null"}, Value::Object(inner)]});
            }
        }
    }

    /// A Swagger 2.0 non-body parameter's own fields, as the schema they describe.
    pub(super) fn swagger_parameter(p: &Value) -> Value {
        const KEYS: [&str; 14] = [
            "type",
            "format",
            "items",
            "enum",
            "default",
            "maximum",
            "exclusiveMaximum",
            "minimum",
            "exclusiveMinimum",
            "maxLength",
            "minLength",
            "pattern",
            "maxItems",
            "minItems",
        ];
        let mut schema = Map::new();
        for key in KEYS.iter().chain(&["uniqueItems", "multipleOf"]) {
            if let Some(v) = p.get(*key) {
                schema.insert((*key).to_owned(), v.clone());
            }
        }
        let mut schema = Value::Object(schema);
        if let Some(items) = schema.get_mut("items") {
            *items = swagger_parameter(items);
        }
        schema
    }
}
