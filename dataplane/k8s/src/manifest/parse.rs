//! One file's bytes to converted documents.

use super::Location;
use crate::InvalidObject;
use crate::convert::{self, Converted};
use serde::Deserialize;
use serde_json::Value;
use std::path::Path;

/// One object-bearing document (or `List` item) of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub location: Location,
    pub outcome: Result<Converted, InvalidObject>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileParse {
    Documents(Vec<Document>),
    /// The file is not valid YAML/JSON at all; the reason names the line where possible.
    Unreadable(String),
}

/// Parses a `.json` file as one JSON document and anything else as multi-document YAML.
pub fn parse_file(path: &Path, bytes: &[u8]) -> FileParse {
    let values = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_slice::<Value>(bytes)
            .map(|v| vec![v])
            .map_err(|e| format!("invalid JSON: {e}"))
    } else {
        yaml_documents(bytes)
    };
    match values {
        Err(reason) => FileParse::Unreadable(reason),
        Ok(values) => {
            let mut documents = Vec::new();
            for (i, value) in values.into_iter().enumerate() {
                expand(value, i + 1, &mut documents);
            }
            FileParse::Documents(documents)
        }
    }
}

fn yaml_documents(bytes: &[u8]) -> Result<Vec<Value>, String> {
    let mut values = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_slice(bytes) {
        let value = Value::deserialize(document).map_err(|e| format!("invalid YAML: {e}"))?;
        values.push(value);
    }
    Ok(values)
}

/// Converts one document, flattening `kind: List`; empty documents are skipped.
fn expand(value: Value, document: usize, out: &mut Vec<Document>) {
    if value.is_null() {
        return;
    }
    let location = Location {
        document,
        item: None,
    };
    if !value.is_object() {
        out.push(Document {
            location,
            outcome: Err(InvalidObject::new(
                "",
                None,
                None,
                "document is not a mapping".into(),
            )),
        });
        return;
    }
    if value.get("kind").and_then(Value::as_str) == Some("List") {
        let items = match value.get("items") {
            Some(Value::Array(items)) => items.clone(),
            None | Some(Value::Null) => Vec::new(),
            Some(_) => {
                out.push(Document {
                    location,
                    outcome: Err(InvalidObject::new(
                        "List",
                        None,
                        None,
                        "items is not a list".into(),
                    )),
                });
                return;
            }
        };
        for (i, item) in items.into_iter().enumerate() {
            out.push(Document {
                location: Location {
                    document,
                    item: Some(i + 1),
                },
                outcome: convert::from_value(item),
            });
        }
        return;
    }
    out.push(Document {
        location,
        outcome: convert::from_value(value),
    });
}
