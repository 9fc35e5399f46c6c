//! The conversion of Swagger 2.0 and OpenAPI 3.0 schemas into plain JSON Schema Draft 4, for the
//! `jsonschema` crate (see [`super::spec`] for what is converted and why).

use std::collections::HashMap;

use serde_json::{json, Map, Value};

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
        if let Some(map) = out
            .pointer_mut("/components/schemas")
            .and_then(Value::as_object_mut)
        {
            for schema in map.values_mut() {
                schema_node(schema, &ctx);
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
