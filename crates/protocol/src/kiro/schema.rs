//! Tool schemas as Kiro accepts them.

use serde_json::{Map, Value, json};

/// Keywords whose value maps names to schemas.
const SCHEMA_MAPS: [&str; 5] = [
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];

/// Keywords whose value is data, not a schema.
const DATA: [&str; 4] = ["enum", "const", "default", "examples"];

/// A JSON schema Kiro takes: without `additionalProperties` and `$schema`
/// anywhere and without an empty `required` (either gets the request
/// refused as improperly formed). A schema that is not an object becomes
/// one that takes any object.
pub fn clean_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(object) => Value::Object(clean_object(object)),
        _ => json!({"type": "object", "properties": {}}),
    }
}

fn clean_object(object: &Map<String, Value>) -> Map<String, Value> {
    let mut clean = Map::with_capacity(object.len());
    for (key, value) in object {
        let key = key.as_str();
        if key == "additionalProperties" || key == "$schema" {
            continue;
        }
        if key == "required" && value.as_array().is_some_and(Vec::is_empty) {
            continue;
        }
        let value = if DATA.contains(&key) {
            value.clone()
        } else if SCHEMA_MAPS.contains(&key)
            && let Value::Object(schemas) = value
        {
            Value::Object(
                schemas
                    .iter()
                    .map(|(name, schema)| (name.clone(), clean_value(schema)))
                    .collect(),
            )
        } else {
            clean_value(value)
        };
        clean.insert(key.to_owned(), value);
    }
    clean
}

/// A value inside a schema: objects are schemas, arrays hold schemas.
fn clean_value(value: &Value) -> Value {
    match value {
        Value::Object(object) => Value::Object(clean_object(object)),
        Value::Array(items) => Value::Array(items.iter().map(clean_value).collect()),
        other => other.clone(),
    }
}
