//! Tool and response schemas as Gemini accepts them.
//!
//! Gemini takes an `OpenAPI` 3.0 subset. Everything else (`$ref`,
//! `additionalProperties`, `const`, type lists, unknown formats …) is
//! rewritten or removed, or the request fails with a 400.

use serde_json::{Map, Value};

/// The keywords Gemini's schema accepts.
const KEPT: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
];

/// How deep `$ref`s are followed; recursive schemas stop here.
const MAX_DEPTH: usize = 8;

/// How many `$ref`s one schema may have inlined in all. Depth alone does
/// not bound the work: a definition that refers to itself ten times would
/// be inlined 10⁸ times by depth 8, from a request of a few hundred bytes.
const MAX_EXPANSIONS: usize = 1_000;

/// A JSON schema rewritten into the subset Gemini accepts.
pub fn sanitize_schema(schema: &Value) -> Value {
    let definitions = schema
        .get("$defs")
        .or_else(|| schema.get("definitions"))
        .cloned()
        .unwrap_or(Value::Null);
    let mut expansions = MAX_EXPANSIONS;
    sanitize(schema, &definitions, 0, &mut expansions)
}

/// `expansions` is what is left of [`MAX_EXPANSIONS`]; past it, references
/// become a plain object, as at the depth limit.
fn sanitize(schema: &Value, definitions: &Value, depth: usize, expansions: &mut usize) -> Value {
    let Value::Object(object) = schema else {
        return schema.clone();
    };
    if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
        let name = reference
            .strip_prefix("#/$defs/")
            .or_else(|| reference.strip_prefix("#/definitions/"));
        return match name.and_then(|name| definitions.get(name)) {
            Some(target) if depth < MAX_DEPTH && *expansions > 0 => {
                *expansions -= 1;
                sanitize(target, definitions, depth + 1, expansions)
            }
            _ => serde_json::json!({"type": "object"}),
        };
    }
    let mut out = Map::new();
    for (key, value) in object {
        match key.as_str() {
            "type" => match value {
                Value::Array(types) => {
                    let real: Vec<&Value> = types.iter().filter(|kind| *kind != "null").collect();
                    if real.len() < types.len() {
                        out.insert("nullable".to_owned(), true.into());
                    }
                    if let Some(first) = real.first() {
                        out.insert("type".to_owned(), (*first).clone());
                    }
                }
                Value::String(kind) if kind == "null" => {
                    out.insert("nullable".to_owned(), true.into());
                }
                _ => {
                    out.insert(key.clone(), value.clone());
                }
            },
            "properties" => {
                if let Value::Object(properties) = value {
                    let clean: Map<String, Value> = properties
                        .iter()
                        .map(|(name, property)| {
                            (
                                name.clone(),
                                sanitize(property, definitions, depth, expansions),
                            )
                        })
                        .collect();
                    out.insert(key.clone(), Value::Object(clean));
                }
            }
            "items" => {
                out.insert(key.clone(), sanitize(value, definitions, depth, expansions));
            }
            "anyOf" | "oneOf" => {
                if let Value::Array(options) = value {
                    let clean: Vec<Value> = options
                        .iter()
                        .map(|option| sanitize(option, definitions, depth, expansions))
                        .collect();
                    out.insert("anyOf".to_owned(), Value::Array(clean));
                }
            }
            "const" => {
                out.insert("enum".to_owned(), Value::Array(vec![value.clone()]));
            }
            kept if KEPT.contains(&kept) => {
                out.insert(key.clone(), value.clone());
            }
            // $schema, $id, $defs, additionalProperties, examples,
            // exclusiveMinimum, allOf, not, … are not Gemini's.
            _ => {}
        }
    }
    drop_what_gemini_refuses(&mut out);
    Value::Object(out)
}

/// Removes the values Gemini refuses in a schema whose keywords it takes.
fn drop_what_gemini_refuses(out: &mut Map<String, Value>) {
    // Gemini's enums are strings; other formats it rejects.
    if let Some(Value::Array(values)) = out.get("enum")
        && values.iter().any(|value| !value.is_string())
    {
        out.remove("enum");
    }
    if let Some(format) = out.get("format").and_then(Value::as_str)
        && !matches!(
            format,
            "enum" | "date-time" | "int32" | "int64" | "float" | "double"
        )
    {
        out.remove("format");
    }
    // `required` may only name properties that exist.
    if let Some(Value::Array(required)) = out.get("required") {
        let properties = out.get("properties").and_then(Value::as_object);
        let kept: Vec<Value> = required
            .iter()
            .filter(|name| {
                name.as_str().is_some_and(|name| {
                    properties.is_some_and(|properties| properties.contains_key(name))
                })
            })
            .cloned()
            .collect();
        if kept.is_empty() {
            out.remove("required");
        } else {
            out.insert("required".to_owned(), Value::Array(kept));
        }
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::sanitize_schema;

    #[test]
    fn rewrites_what_gemini_rejects() {
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "city": {"type": ["string", "null"], "format": "uri", "examples": ["Paris"]},
                "unit": {"const": "c"},
                "count": {"type": "integer", "enum": [1, 2], "exclusiveMinimum": 0},
                "place": {"$ref": "#/$defs/place"},
                "tags": {"type": "array", "items": {"oneOf": [{"type": "string"}, {"type": "number"}]}}
            },
            "required": ["city", "missing"],
            "$defs": {"place": {"type": "object", "properties": {"near": {"$ref": "#/$defs/place"}}}}
        });
        let clean = sanitize_schema(&schema);
        assert_eq!(clean["type"], "object");
        assert_eq!(clean.get("additionalProperties"), None);
        assert_eq!(clean.get("$schema"), None);
        assert_eq!(
            clean["properties"]["city"],
            json!({"nullable": true, "type": "string"})
        );
        assert_eq!(clean["properties"]["unit"], json!({"enum": ["c"]}));
        assert_eq!(clean["properties"]["count"], json!({"type": "integer"}));
        assert_eq!(
            clean["properties"]["place"]["properties"]["near"]["type"],
            "object"
        );
        assert_eq!(
            clean["properties"]["tags"]["items"]["anyOf"][1],
            json!({"type": "number"})
        );
        assert_eq!(clean["required"], json!(["city"]));
        assert_eq!(clean.get("$defs"), None);
    }

    #[test]
    fn recursive_references_stop() {
        let schema = json!({"$ref": "#/$defs/node", "$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}}}});
        let clean = sanitize_schema(&schema);
        let mut depth = 0;
        let mut node = &clean;
        while let Some(next) = node
            .get("properties")
            .and_then(|properties| properties.get("next"))
        {
            node = next;
            depth += 1;
        }
        assert!(depth <= 9, "{depth}");
    }

    #[test]
    fn references_that_fan_out_are_inlined_a_bounded_number_of_times() {
        // Ten references to itself per level: 10⁸ copies at depth 8.
        let properties: serde_json::Map<String, serde_json::Value> = (0..10)
            .map(|i| (format!("p{i}"), json!({"$ref": "#/$defs/node"})))
            .collect();
        let schema = json!({
            "$ref": "#/$defs/node",
            "$defs": {"node": {"type": "object", "properties": properties}}
        });
        let started = std::time::Instant::now();
        let clean = sanitize_schema(&schema);
        let size = clean.to_string().len();
        assert!(size < 1_000_000, "{size} bytes");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // The first levels are still there.
        assert_eq!(
            clean["properties"]["p0"]["properties"]["p9"]["type"],
            "object"
        );
    }
}
