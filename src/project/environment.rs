//! Environments: the `environments:` section of `project.yaml`, each with its
//! connection defaults and its overrides of workflow files.
//!
//! An override is YAML merged into a workflow file's YAML before the file is
//! checked ([`Node::merge`]), so every key a workflow file has, today's and
//! tomorrow's, can be overridden without this module knowing it, and a
//! problem with an overridden value is reported where the override wrote it.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use super::check::{FileCheck, get, nearest};
use super::diagnostic::{Diagnostic, Related};
use super::names;
use super::node::{Node, Position, WORKFLOW_KEYS};

/// The keys of one environment in `project.yaml`.
pub const ENVIRONMENT_KEYS: [&str; 4] = ["namespace", "address", "profile", "overrides"];

/// The variable that selects an environment when no flag does.
pub const ENVIRONMENT_VARIABLE: &str = "SCHEDULE_SYNC_ENV";

/// One environment that `project.yaml` declares: where its schedules live.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Environment {
    /// Its name, such as `staging`.
    pub name: String,
    /// The Temporal namespace its schedules live in.
    pub namespace: String,
    /// The Temporal address (`host:port` or a URL), when it names one.
    pub address: Option<String>,
    /// The `temporal.toml` profile its connection starts from, when it names one.
    pub profile: Option<String>,
}

/// An environment as declared, with its overrides.
#[derive(Clone, Debug)]
pub(super) struct Declared {
    /// The environment.
    pub environment: Environment,
    /// Where its name stands in `project.yaml`.
    pub at: Position,
    /// Each override: the workflow id, the position of the id, and the
    /// YAML to merge, its positions marked as lying in `project.yaml`
    /// (origin [`PROJECT_ORIGIN`]).
    pub overrides: Vec<(String, Position, Node)>,
}

/// The origin number of `project.yaml` in the check of a workflow file.
pub(super) const PROJECT_ORIGIN: u32 = 1;

/// Checks the `environments:` section of `project.yaml`'s root mapping.
pub(super) fn declared(check: &mut FileCheck<'_>, entries: &[(Node, Node)]) -> Vec<Declared> {
    let Some(section) = get(entries, "environments") else {
        return Vec::new();
    };
    let Some(items) = section.as_map() else {
        check.wrong_type(
            section,
            "environments",
            "a mapping from environment names to their settings",
        );
        return Vec::new();
    };
    let mut out: Vec<Declared> = Vec::new();
    for (key, body) in items {
        let Some(name) = check.check_name(
            key,
            "environments",
            names::is_project_name,
            names::PROJECT_NAME_RULE,
        ) else {
            continue;
        };
        if let Some(environment) = one(check, &name, key.at, body) {
            out.push(environment);
        }
    }
    same_namespace(check, &out, entries);
    out
}

fn one(check: &mut FileCheck<'_>, name: &str, at: Position, body: &Node) -> Option<Declared> {
    let Some(entries) = body.as_map() else {
        check.wrong_type(
            body,
            &format!("environment {name}"),
            "a mapping with `namespace` and, optionally, `address`, `profile` and `overrides`",
        );
        return None;
    };
    check.unknown_keys(
        entries,
        &ENVIRONMENT_KEYS,
        &format!("environment `{name}`"),
        true,
    );
    let namespace = match get(entries, "namespace") {
        Some(node) => check.temporal_name(node, "namespace"),
        None => {
            check
                .error(at, format!("environment `{name}` has no `namespace`"))
                .expected = Some(
                "`namespace: <namespace>`: every environment names the namespace of its schedules"
                    .to_owned(),
            );
            None
        }
    };
    let address = get(entries, "address").and_then(|n| check.temporal_name(n, "address"));
    let profile = get(entries, "profile").and_then(|n| check.temporal_name(n, "profile"));
    let overrides = get(entries, "overrides").map_or_else(Vec::new, |n| overrides(check, n));
    Some(Declared {
        environment: Environment {
            name: name.to_owned(),
            namespace: namespace?,
            address,
            profile,
        },
        at,
        overrides,
    })
}

fn overrides(check: &mut FileCheck<'_>, node: &Node) -> Vec<(String, Position, Node)> {
    let Some(entries) = node.as_map() else {
        check.wrong_type(
            node,
            "overrides",
            "a mapping from workflow ids to the parts of their files to change",
        );
        return Vec::new();
    };
    let keys: Vec<&str> = WORKFLOW_KEYS
        .iter()
        .copied()
        .filter(|k| *k != "id")
        .collect();
    let mut out = Vec::new();
    for (id_node, patch) in entries {
        let Some(id) = check.check_name(
            id_node,
            "overrides",
            names::is_workflow_id,
            names::WORKFLOW_ID_RULE,
        ) else {
            continue;
        };
        let Some(fields) = patch.as_map() else {
            check.wrong_type(
                patch,
                &format!("the override of {id}"),
                "a mapping of workflow-file keys, such as `schedule: {enabled: false}`",
            );
            continue;
        };
        let mut valid = true;
        for (key, _) in fields {
            let Some(text) = key.as_str() else {
                check.wrong_type(key, "overrides", "a key of a workflow file");
                valid = false;
                continue;
            };
            if text == "id" {
                check
                    .error(key.at, "an override cannot change a workflow's `id`")
                    .expected = Some(format!("one of {}", keys.join(", ")));
                valid = false;
            } else if !keys.contains(&text) {
                let d = check.error(key.at, format!("unknown key `{text}` in an override"));
                d.expected = Some(format!("one of {}", keys.join(", ")));
                d.help = nearest(text, &keys).map(|s| format!("did you mean `{s}`?"));
                valid = false;
            }
        }
        if valid {
            out.push((id, id_node.at, patch.in_origin(PROJECT_ORIGIN)));
        }
    }
    out
}

/// Two environments on one namespace of one server would each claim the
/// other's schedules (ownership is per project and namespace): refused,
/// unless they name different addresses.
fn same_namespace(check: &mut FileCheck<'_>, declared: &[Declared], entries: &[(Node, Node)]) {
    for (i, later) in declared.iter().enumerate() {
        let Some(earlier) = declared[..i].iter().find(|e| {
            e.environment.namespace == later.environment.namespace
                && e.environment.address == later.environment.address
        }) else {
            continue;
        };
        let at = namespace_at(entries, &later.environment.name).unwrap_or(later.at);
        let first = namespace_at(entries, &earlier.environment.name).unwrap_or(earlier.at);
        let message = format!(
            "environments `{}` and `{}` both use namespace `{}`{}: each would delete and \
             overwrite the other's schedules",
            earlier.environment.name,
            later.environment.name,
            later.environment.namespace,
            later
                .environment
                .address
                .as_deref()
                .map_or_else(String::new, |a| format!(" at {a}")),
        );
        let d = check.error(at, message);
        d.expected = Some("a namespace of its own for each environment".to_owned());
        d.help = Some(
            "give each environment its own namespace, or, for two clusters with a namespace \
             of the same name, a different `address`"
                .to_owned(),
        );
        d.related = Some(Related {
            file: d.file.clone(),
            line: first.line,
            column: first.column,
            note: format!("environment `{}`", earlier.environment.name),
        });
    }
}

fn namespace_at(entries: &[(Node, Node)], name: &str) -> Option<Position> {
    let environments = get(entries, "environments")?.as_map()?;
    let (_, body) = environments
        .iter()
        .find(|(k, _)| k.as_str() == Some(name))?;
    Some(get(body.as_map()?, "namespace")?.at)
}

/// The overrides of one environment, by workflow id, and the text of
/// `project.yaml` where they were written.
pub(super) struct Patches<'a> {
    /// The YAML to merge into each workflow's file.
    pub by_id: HashMap<&'a str, &'a Node>,
    /// `project.yaml`, relative to the project folder.
    pub file: &'a Path,
    /// Its text.
    pub source: &'a str,
}

impl<'a> Patches<'a> {
    /// The overrides of `declared`.
    pub fn of(declared: &'a Declared, file: &'a Path, source: &'a str) -> Self {
        Patches {
            by_id: declared
                .overrides
                .iter()
                .map(|(id, _, node)| (id.as_str(), node))
                .collect(),
            file,
            source,
        }
    }
}

/// An error for each override that names a workflow no file declares.
pub(super) fn unknown_ids(
    declared: &Declared,
    project_file: &Path,
    source: &str,
    ids: &[&str],
) -> Vec<Diagnostic> {
    declared
        .overrides
        .iter()
        .filter(|(id, _, _)| !ids.contains(&id.as_str()))
        .map(|(id, at, _)| {
            let mut d = Diagnostic::error(
                project_file,
                *at,
                format!(
                    "environment `{}` overrides workflow `{id}`, which no workflow file declares",
                    declared.environment.name
                ),
            )
            .expected("the id of a workflow of the project");
            d.help = nearest(id, ids).map(|s| format!("did you mean `{s}`?"));
            d.with_snippet(source)
        })
        .collect()
}
