//! A YAML document as a tree of nodes that remember where they stand in the file.
//!
//! The project files are read into this tree first and checked by hand
//! afterwards, so that every problem in a file can be reported at once, each at
//! its own line and column, instead of stopping at the first one as a derived
//! `Deserialize` would.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};

/// The keys of a workflow file that are ours; others are left alone.
pub const WORKFLOW_KEYS: [&str; 4] = ["id", "type", "task_queue", "schedule"];
use serde_saphyr::Spanned;

/// A 1-based line and column in a source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Line, counted from 1.
    pub line: u32,
    /// Column in characters, counted from 1.
    pub column: u32,
}

impl Position {
    /// How many bits of `line` count lines; the bits above name the file
    /// the position belongs to when that is not the file being checked.
    const ORIGIN_SHIFT: u32 = 24;

    /// The same place, marked as lying in the other file numbered `origin`
    /// (1 and up) of a check. A value merged in from an environment's
    /// override keeps its own position this way, so that a problem with it
    /// is reported where it was written.
    pub fn in_origin(self, origin: u32) -> Position {
        Position {
            line: (self.line & Self::LINE_MASK) | (origin << Self::ORIGIN_SHIFT),
            column: self.column,
        }
    }

    /// The file a position lies in: 0 for the file being checked, otherwise
    /// the number given to [`Position::in_origin`].
    pub fn origin(self) -> u32 {
        self.line >> Self::ORIGIN_SHIFT
    }

    /// The position within its own file, without the origin.
    pub fn local(self) -> Position {
        Position {
            line: self.line & Self::LINE_MASK,
            column: self.column,
        }
    }

    const LINE_MASK: u32 = (1 << Self::ORIGIN_SHIFT) - 1;
}

/// One YAML node and its position.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// What the node holds.
    pub value: Value,
    /// Where the node starts.
    pub at: Position,
}

/// The value of a YAML node, after YAML 1.2 core-schema typing.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null`, `~` or an empty value.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer (YAML allows any size; JSON conversion takes 64 bits).
    Int(i128),
    /// A floating-point number.
    Float(f64),
    /// Any other scalar.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, keys in file order.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The node's text when it is a string scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(text) => Some(text),
            _ => None,
        }
    }

    /// The node's entries when it is a mapping.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The node with every position in it marked as lying in file `origin`
    /// (see [`Position::in_origin`]).
    pub fn in_origin(&self, origin: u32) -> Node {
        let value = match &self.value {
            Value::Seq(items) => Value::Seq(items.iter().map(|n| n.in_origin(origin)).collect()),
            Value::Map(entries) => Value::Map(
                entries
                    .iter()
                    .map(|(k, v)| (k.in_origin(origin), v.in_origin(origin)))
                    .collect(),
            ),
            scalar => scalar.clone(),
        };
        Node {
            value,
            at: self.at.in_origin(origin),
        }
    }

    /// Merges `patch` into this node, the one rule of environment overrides:
    /// two mappings merge key by key, recursively; a key whose value in the
    /// patch is null is removed; any other value of the patch replaces this
    /// one (lists included). This is JSON Merge Patch (RFC 7386) over YAML.
    pub fn merge(&mut self, patch: &Node) {
        let (Value::Map(entries), Value::Map(changes)) = (&mut self.value, &patch.value) else {
            *self = patch.clone();
            return;
        };
        for (key, change) in changes {
            let at = entries.iter().position(|(k, _)| k.value == key.value);
            match (at, &change.value) {
                (Some(i), Value::Null) => {
                    entries.remove(i);
                }
                (None, Value::Null) => {}
                (Some(i), _) => entries[i].1.merge(change),
                (None, _) => entries.push((key.clone(), change.clone())),
            }
        }
    }

    /// A short phrase that names what the node is, for error messages:
    /// `a number (42)`, `a list`, `the string "abc"`.
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Null => "an empty value".to_owned(),
            Value::Bool(b) => format!("the boolean `{b}`"),
            Value::Int(i) => format!("the number `{i}`"),
            Value::Float(f) => format!("the number `{f}`"),
            Value::Str(s) => format!("the string {}", quote(s)),
            Value::Seq(_) => "a list".to_owned(),
            Value::Map(_) => "a mapping".to_owned(),
        }
    }

    /// Converts the node to JSON. Keys that are lists or mappings have no JSON form
    /// and are refused with the position of the offending key.
    ///
    /// # Errors
    ///
    /// The position of a key that is a list or a mapping, or of an integer
    /// beyond 64 bits.
    pub fn to_json(&self) -> Result<serde_json::Value, Position> {
        Ok(match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => match (i64::try_from(*i), u64::try_from(*i)) {
                (Ok(small), _) => small.into(),
                (_, Ok(unsigned)) => unsigned.into(),
                _ => return Err(self.at),
            },
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .ok_or(self.at)?,
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::Seq(items) => {
                serde_json::Value::Array(items.iter().map(Node::to_json).collect::<Result<_, _>>()?)
            }
            Value::Map(entries) => {
                let mut object = serde_json::Map::with_capacity(entries.len());
                for (key, value) in entries {
                    let key = match &key.value {
                        Value::Str(s) => s.clone(),
                        Value::Int(i) => i.to_string(),
                        Value::Bool(b) => b.to_string(),
                        Value::Float(f) => f.to_string(),
                        Value::Null => "null".to_owned(),
                        Value::Seq(_) | Value::Map(_) => return Err(key.at),
                    };
                    object.insert(key, value.to_json()?);
                }
                serde_json::Value::Object(object)
            }
        })
    }
}

/// Quotes a user's string for a message, cutting it when it is long.
pub fn quote(text: &str) -> String {
    const LIMIT: usize = 60;
    if text.chars().count() <= LIMIT {
        format!("{text:?}")
    } else {
        let head: String = text.chars().take(LIMIT).collect();
        format!("{head:?}…")
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(deserializer)?;
        Ok(Node {
            value: spanned.value,
            at: Position {
                line: u32::try_from(spanned.referenced.line()).unwrap_or(u32::MAX),
                column: u32::try_from(spanned.referenced.column()).unwrap_or(u32::MAX),
            },
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor { keep: None })
    }
}

/// The root of a workflow file, read shallowly: only the values under
/// schedule-sync's own keys become nodes. The rest of a workflow file is the
/// workflow's definition, often most of the file, and is parsed (so that
/// malformed YAML is still reported) but not kept; its keys stay, as nodes
/// over `Null`, for the misspelling check.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkflowRoot(pub Node);

impl<'de> Deserialize<'de> for WorkflowRoot {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let keep = Some(&WORKFLOW_KEYS[..]);
        let value = deserializer.deserialize_any(ValueVisitor { keep })?;
        Ok(WorkflowRoot(Node {
            value,
            at: Position { line: 1, column: 1 },
        }))
    }
}

/// Builds a [`Value`]; with `keep`, a mapping keeps only the values under
/// those keys.
struct ValueVisitor {
    keep: Option<&'static [&'static str]>,
}

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i.into()))
    }

    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(Value::Int(u.into()))
    }

    fn visit_i128<E>(self, i: i128) -> Result<Value, E> {
        Ok(Value::Int(i))
    }

    fn visit_u128<E: de::Error>(self, u: u128) -> Result<Value, E> {
        i128::try_from(u)
            .map(Value::Int)
            .map_err(|_| E::custom("integer too large"))
    }

    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Float(f))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::Str(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::Str(s))
    }

    fn visit_bytes<E>(self, bytes: &[u8]) -> Result<Value, E> {
        Ok(Value::Str(String::from_utf8_lossy(bytes).into_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(key) = map.next_key::<Node>()? {
            let kept = self
                .keep
                .is_none_or(|keep| key.as_str().is_some_and(|k| keep.contains(&k)));
            let value = if kept {
                map.next_value::<Node>()?
            } else {
                map.next_value::<de::IgnoredAny>()?;
                Node {
                    value: Value::Null,
                    at: key.at,
                }
            };
            entries.push((key, value));
        }
        Ok(Value::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Node {
        serde_saphyr::from_str(text).expect("valid YAML")
    }

    #[test]
    fn nodes_remember_line_and_column() {
        let doc = parse("id: a\nschedule:\n  cron: \"0 2 * * *\"\n");
        let entries = doc.as_map().unwrap();
        let (key, value) = &entries[1];
        assert_eq!(key.as_str(), Some("schedule"));
        assert_eq!(key.at, Position { line: 2, column: 1 });
        let (cron_key, cron) = &value.as_map().unwrap()[0];
        assert_eq!(cron_key.at, Position { line: 3, column: 3 });
        assert_eq!(cron.at, Position { line: 3, column: 9 });
        assert_eq!(cron.as_str(), Some("0 2 * * *"));
    }

    #[test]
    fn scalars_are_typed_by_the_core_schema() {
        let doc = parse("a: 1\nb: 1.5\nc: true\nd: ~\ne: 30s\nf: [1, x]\n");
        let values: Vec<_> = doc
            .as_map()
            .unwrap()
            .iter()
            .map(|(_, v)| &v.value)
            .collect();
        assert_eq!(values[0], &Value::Int(1));
        assert_eq!(values[1], &Value::Float(1.5));
        assert_eq!(values[2], &Value::Bool(true));
        assert_eq!(values[3], &Value::Null);
        assert_eq!(values[4], &Value::Str("30s".into()));
        assert!(matches!(values[5], Value::Seq(items) if items.len() == 2));
    }

    #[test]
    fn a_workflow_root_keeps_only_our_sections() {
        let text = "id: a\nsteps:\n  - name: x\nschedule:\n  cron: \"@daily\"\n";
        let root: WorkflowRoot = serde_saphyr::from_str(text).unwrap();
        let entries = root.0.as_map().unwrap();
        assert_eq!(entries[0].1.as_str(), Some("a"));
        assert_eq!(entries[1].0.as_str(), Some("steps"));
        assert_eq!(entries[1].1.value, Value::Null);
        assert!(entries[2].1.as_map().is_some());
    }

    #[test]
    fn an_override_merges_mappings_and_replaces_everything_else() {
        let mut base = parse(
            "id: a\nschedule:\n  cron: [\"@daily\", \"@hourly\"]\n  jitter: 1m\n  input: {a: 1, b: 2}\n",
        );
        let patch = parse(
            "schedule:\n  cron: [\"@weekly\"]\n  jitter: ~\n  enabled: false\n  input: {b: 3}\n",
        )
        .in_origin(1);
        base.merge(&patch);
        assert_eq!(
            base.to_json().unwrap(),
            serde_json::json!({"id": "a", "schedule": {
                "cron": ["@weekly"], "input": {"a": 1, "b": 3}, "enabled": false}})
        );
        let schedule = &base.as_map().unwrap()[1].1;
        let (enabled_key, enabled) = &schedule.as_map().unwrap()[2];
        assert_eq!(enabled_key.at.origin(), 1);
        assert_eq!(
            enabled.at.local(),
            Position {
                line: 4,
                column: 12
            }
        );
        // A key already in the file keeps the file's position.
        assert_eq!(
            schedule.as_map().unwrap()[0].0.at,
            Position { line: 3, column: 3 }
        );
    }

    #[test]
    fn a_tree_converts_to_json() {
        let doc = parse("region: eu\ncount: 3\nnested: {list: [1, 2.5, null]}\n");
        assert_eq!(
            doc.to_json().unwrap(),
            serde_json::json!({"region": "eu", "count": 3, "nested": {"list": [1, 2.5, null]}})
        );
    }

    #[test]
    fn a_list_as_a_key_has_no_json_form() {
        let doc = parse("x:\n  ? [1, 2]\n  : y\n");
        assert_eq!(doc.to_json(), Err(Position { line: 2, column: 5 }));
    }
}
