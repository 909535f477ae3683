//! Printing answers: text for people, or JSON lines (one object per line, keys and values both
//! as escaped text and as hexadecimal, with revisions) for programs.

use std::io::Write;

use serde_json::{Value, json};

use super::OutputFormat;
use super::bytes::{Encoding, escape, hex};

/// Where and how a command prints its answers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Output {
    format: OutputFormat,
    encoding: Encoding,
}

impl Output {
    pub(crate) fn new(format: OutputFormat, encoding: Encoding) -> Output {
        Output { format, encoding }
    }

    /// Whether the output is JSON lines.
    pub(crate) fn is_json(&self) -> bool {
        self.format == OutputFormat::Json
    }

    /// Prints text lines, or one JSON object.
    pub(crate) fn print(&self, text: &[String], object: Value) {
        let mut stdout = std::io::stdout().lock();
        // A closed stdout (a pipe to `head`) ends the output, not the command.
        let _ = match self.format {
            OutputFormat::Text => text.iter().try_for_each(|line| writeln!(stdout, "{line}")),
            OutputFormat::Json => writeln!(stdout, "{object}"),
        };
    }

    /// The bytes as this output shows them in text.
    pub(crate) fn show(&self, bytes: &[u8]) -> String {
        self.encoding.render(bytes)
    }

    /// Fields for some bytes in JSON: `name` (escaped text) and `name_hex`.
    fn bytes_fields(name: &str, bytes: &[u8]) -> [(String, Value); 2] {
        [
            (name.to_owned(), Value::String(escape(bytes))),
            (format!("{name}_hex"), Value::String(hex(bytes))),
        ]
    }

    /// The JSON object of one key-value entry.
    pub(crate) fn entry_object(key: &[u8], value: &[u8], revision: u64) -> Value {
        let mut object = serde_json::Map::new();
        object.extend(Output::bytes_fields("key", key));
        object.extend(Output::bytes_fields("value", value));
        object.insert("revision".to_owned(), json!(revision));
        Value::Object(object)
    }

    /// One key-value entry: the key and the value on two lines, or a JSON object.
    pub(crate) fn entry(&self, key: &[u8], value: &[u8], revision: u64) {
        self.print(
            &[self.show(key), self.show(value)],
            Output::entry_object(key, value, revision),
        );
    }
}
