//! The deployment files in `deploy/` against the code they describe: the
//! PrometheusRule is what `scripts/gen-prometheusrule.sh` makes of the alert
//! rules; every PromQL expression of the Grafana dashboard and the alerts
//! parses (`promtool check rules`) and names only metrics that a running
//! `serve` exports; the Kubernetes manifests parse, agree with each other
//! (ports, labels, the project's mount), and their probe and scrape paths
//! are answered by `serve` started with the Deployment's own arguments on
//! the project as the ConfigMap mounts it.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use schedule_sync::dev_server::free_port;
use support::serve::Serve;

const DASHBOARD: &str = "deploy/grafana/schedule-sync.json";
const RULES: &str = "deploy/prometheus/schedule-sync.rules.yml";
const PROMETHEUS_RULE: &str = "deploy/kubernetes/prometheusrule.yaml";
const KUBERNETES: &str = "deploy/kubernetes";
const EXAMPLE: &str = "examples/billing";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

/// The YAML documents of a file (`---` separated), as JSON values.
fn yaml_documents(relative: &str) -> Vec<Value> {
    let documents: Vec<Value> = serde_saphyr::from_multiple(&read(relative))
        .unwrap_or_else(|e| panic!("{relative} is not valid YAML: {e}"));
    let documents: Vec<Value> = documents.into_iter().filter(|d| !d.is_null()).collect();
    assert!(!documents.is_empty(), "{relative} holds no YAML document");
    documents
}

/// The one YAML document of a file.
fn yaml(relative: &str) -> Value {
    let mut documents = yaml_documents(relative);
    assert_eq!(documents.len(), 1, "{relative} should hold one document");
    documents.remove(0)
}

fn text<'a>(value: &'a Value, what: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what} should be a string: {value}"))
}

// ---------------------------------------------------------------------------
// The PrometheusRule.

#[test]
fn the_prometheusrule_is_what_the_script_makes_of_the_alert_rules() {
    // Run from another folder: the script finds the repository itself.
    let elsewhere = tempfile::tempdir().unwrap();
    let output = Command::new("sh")
        .arg(root().join("scripts/gen-prometheusrule.sh"))
        .current_dir(elsewhere.path())
        .output()
        .expect("sh runs");
    assert!(
        output.status.success(),
        "scripts/gen-prometheusrule.sh failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let generated = String::from_utf8(output.stdout).unwrap();
    let committed = read(PROMETHEUS_RULE);
    assert!(
        generated == committed,
        "{PROMETHEUS_RULE} is not what scripts/gen-prometheusrule.sh prints now; run\n  \
         scripts/gen-prometheusrule.sh > {PROMETHEUS_RULE}"
    );

    // And it is the rules, as a PrometheusRule: not merely the same text.
    let rule = yaml(PROMETHEUS_RULE);
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(rule["kind"], "PrometheusRule");
    assert_eq!(rule["metadata"]["name"], "schedule-sync");
    let rules = yaml(RULES);
    assert!(
        !alert_expressions().is_empty(),
        "{RULES} should hold alerts"
    );
    assert_eq!(
        rule["spec"], rules,
        "the PrometheusRule's spec should be the rules file"
    );
}

// ---------------------------------------------------------------------------
// PromQL: the dashboard's and the alerts' expressions.

/// The dashboard, parsed.
fn dashboard() -> Value {
    serde_json::from_str(&read(DASHBOARD))
        .unwrap_or_else(|e| panic!("{DASHBOARD} is not valid JSON: {e}"))
}

/// Every panel, those inside collapsed rows included.
fn panels(dashboard: &Value) -> Vec<Value> {
    fn collect(list: &Value, out: &mut Vec<Value>) {
        for panel in list.as_array().into_iter().flatten() {
            out.push(panel.clone());
            collect(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    collect(&dashboard["panels"], &mut out);
    out
}

/// `(panel title, expression)` of every query of the dashboard's panels.
fn dashboard_expressions() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in panels(&dashboard()) {
        if panel["type"] == "row" {
            continue;
        }
        let title = text(&panel["title"], "a panel title").to_owned();
        let targets = panel["targets"].as_array();
        assert!(
            targets.is_some_and(|t| !t.is_empty()),
            "panel {title:?} has no query"
        );
        for target in targets.into_iter().flatten() {
            let expr = text(&target["expr"], &format!("the query of {title:?}"));
            assert!(
                !expr.trim().is_empty(),
                "panel {title:?} has an empty query"
            );
            out.push((title.clone(), expr.to_owned()));
        }
    }
    out
}

/// The queries of the dashboard's query variables (`label_values(...)`):
/// not PromQL, but the metrics they name must exist.
fn dashboard_variable_queries() -> Vec<String> {
    dashboard()["templating"]["list"]
        .as_array()
        .expect("the dashboard has variables")
        .iter()
        .filter(|v| v["type"] == "query")
        .map(|v| {
            let query = &v["query"];
            let query = query.get("query").unwrap_or(query);
            text(query, "a variable's query").to_owned()
        })
        .collect()
}

/// `(alert name, expression)` of every rule of the alert rules file.
fn alert_expressions() -> Vec<(String, String)> {
    let rules = yaml(RULES);
    let mut out = Vec::new();
    for group in rules["groups"].as_array().expect("`groups` in the rules") {
        for rule in group["rules"].as_array().expect("`rules` in a group") {
            let name = rule["alert"]
                .as_str()
                .or(rule["record"].as_str())
                .expect("a rule is an alert or a recording rule");
            let expr = match &rule["expr"] {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                other => panic!("the expression of {name} is {other}"),
            };
            out.push((name.to_owned(), expr));
        }
    }
    out
}

/// `expr` with Grafana's variables (`$__rate_interval`, `${job}`, `$job`,
/// `${job:regex}`...) replaced by values Prometheus accepts. An unknown
/// variable fails: it would reach Prometheus unreplaced.
fn concrete(expr: &str) -> String {
    let value = |name: &str| match name {
        "__rate_interval" => "5m",
        "__interval" => "1m",
        "__range" => "1h",
        "__interval_ms" => "60000",
        "__range_s" => "3600",
        "job" | "instance" | "project" => ".*",
        other => panic!("unknown Grafana variable ${other} in {expr:?}"),
    };
    let mut out = String::new();
    let mut rest = expr;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        let name;
        if let Some(braced) = rest.strip_prefix('{') {
            let end = braced
                .find('}')
                .unwrap_or_else(|| panic!("unclosed ${{ in {expr:?}"));
            // `${name:format}`: the format does not change what parses.
            name = braced[..end].split(':').next().unwrap();
            rest = &braced[end + 1..];
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            name = &rest[..end];
            rest = &rest[end..];
        }
        assert!(!name.is_empty(), "a lone `$` in {expr:?}");
        out.push_str(value(name));
    }
    out.push_str(rest);
    assert!(!out.contains("[["), "old-style [[variable]] in {expr:?}");
    out
}

/// The `schedule_sync_*` metric names in `text` (`schedule_sync_[a-z_]+`,
/// not inside a longer name).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices("schedule_sync_") {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let end = text[at..]
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .map_or(text.len(), |e| at + e);
        names.insert(text[at..end].to_owned());
    }
    names
}

/// The metric a series name belongs to (a histogram's `_bucket`, `_sum`
/// and `_count` belong to the histogram).
fn base_metric(name: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name)
}

/// Every metric name the dashboard (queries and variables) and the alerts use.
fn used_metric_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (_, expr) in dashboard_expressions().iter().chain(&alert_expressions()) {
        names.extend(metric_names(expr));
    }
    for query in dashboard_variable_queries() {
        names.extend(metric_names(&query));
    }
    names
}

/// Every metric that `src/telemetry/mod.rs` names.
fn observe_metrics() -> BTreeSet<&'static str> {
    use schedule_sync::telemetry::*;
    [
        STATE,
        STATE_ENTERED,
        RETRY_ATTEMPT,
        RECONCILE_TOTAL,
        RECONCILE_DURATION,
        OPERATIONS_TOTAL,
        RPC_TOTAL,
        SCHEDULES,
        LAST_SUCCESS,
        HELD_DELETIONS,
        CONFIG_RELOAD_TOTAL,
        PACE,
        THROTTLED_TOTAL,
        SCHEDULES_BY_HEALTH,
        SCHEDULE_HEALTH,
        SCHEDULE_LAST_ACTION,
        SCHEDULE_NEXT_ACTION,
    ]
    .into_iter()
    .collect()
}

/// The metrics of one series per schedule, which `serve` exports only with
/// `--schedule-metrics` (the Deployment leaves them off).
fn per_schedule_metrics() -> BTreeSet<&'static str> {
    use schedule_sync::telemetry::*;
    [SCHEDULE_HEALTH, SCHEDULE_LAST_ACTION, SCHEDULE_NEXT_ACTION]
        .into_iter()
        .collect()
}

/// The `promtool` that the test command uses (`scripts/install-promtool.sh`
/// prints its path, installing it when it is missing). Never skipped.
fn promtool() -> PathBuf {
    let output = Command::new("bash")
        .arg(root().join("scripts/install-promtool.sh"))
        .stderr(Stdio::piped())
        .output()
        .expect("bash runs scripts/install-promtool.sh");
    assert!(
        output.status.success(),
        "no promtool: scripts/install-promtool.sh failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = PathBuf::from(String::from_utf8(output.stdout).unwrap().trim());
    assert!(
        path.is_file(),
        "scripts/install-promtool.sh printed {path:?}, which is no file"
    );
    path
}

/// Runs `promtool check rules` on one recording rule per expression.
fn promtool_check(promtool: &Path, expressions: &[String]) -> std::process::Output {
    let rules: Vec<Value> = expressions
        .iter()
        .enumerate()
        .map(|(i, expr)| {
            serde_json::json!({ "record": format!("deploy_check:expr_{i}"), "expr": expr })
        })
        .collect();
    let file = serde_json::json!({ "groups": [{ "name": "deploy-check", "rules": rules }] });
    let dir = tempfile::tempdir().unwrap();
    // JSON is YAML: promtool reads it as a rules file.
    let path = dir.path().join("expressions.rules.yml");
    std::fs::write(&path, serde_json::to_string_pretty(&file).unwrap()).unwrap();
    Command::new(promtool)
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .expect("promtool runs")
}

#[test]
fn every_promql_expression_of_the_dashboard_and_the_alerts_parses() {
    let promtool = promtool();
    let dashboard = dashboard_expressions();
    let alerts = alert_expressions();
    assert!(
        dashboard.len() >= 10,
        "the dashboard has {} queries",
        dashboard.len()
    );
    assert!(!alerts.is_empty(), "{RULES} has no rules");
    let expressions: Vec<String> = dashboard
        .iter()
        .chain(&alerts)
        .map(|(_, expr)| concrete(expr))
        .collect();
    for expr in &expressions {
        assert!(!expr.contains('$'), "a variable left in {expr:?}");
    }

    let output = promtool_check(&promtool, &expressions);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let listing: Vec<String> = dashboard
        .iter()
        .chain(&alerts)
        .zip(&expressions)
        .enumerate()
        .map(|(i, ((title, _), expr))| format!("  expr_{i} ({title}): {expr}"))
        .collect();
    assert!(
        output.status.success(),
        "promtool check rules refused an expression:\n{printed}\n{}",
        listing.join("\n")
    );
    assert!(
        printed.contains(&format!("SUCCESS: {} rules found", expressions.len())),
        "{printed}"
    );

    // The check can fail: promtool refuses a broken expression.
    let broken = promtool_check(
        &promtool,
        &[concrete(
            "sum(rate(schedule_sync_rpc_total[$__rate_interval])",
        )],
    );
    assert!(!broken.status.success(), "promtool accepted broken PromQL");
}

#[test]
fn the_dashboard_uses_its_datasource_variable_and_every_metric() {
    let dashboard = dashboard();
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    let datasource = variables
        .iter()
        .find(|v| v["name"] == "datasource")
        .expect("a `datasource` variable");
    assert_eq!(datasource["type"], "datasource");
    assert_eq!(datasource["query"], "prometheus");
    for name in ["job", "instance", "project"] {
        assert!(
            variables.iter().any(|v| v["name"] == name),
            "no `{name}` variable"
        );
    }
    // Each query shows the projects picked, one series per project.
    for (title, expr) in dashboard_expressions() {
        assert!(
            expr.contains("project=~\"$project\""),
            "panel {title:?} ignores the project: {expr}"
        );
    }

    let mut ids = BTreeSet::new();
    for panel in panels(&dashboard) {
        let title = panel["title"].clone();
        assert!(
            ids.insert(panel["id"].to_string()),
            "panel id of {title} repeats"
        );
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "panel {title}");
        for target in panel["targets"].as_array().unwrap() {
            assert_eq!(
                target["datasource"]["uid"], "${datasource}",
                "a query of {title}"
            );
        }
    }

    // Only metrics that exist, and every one of them on some panel.
    let observed = observe_metrics();
    let used = used_metric_names();
    for name in &used {
        assert!(
            observed.contains(base_metric(name)),
            "{name} is used but src/telemetry/mod.rs has no such metric"
        );
    }
    let used_bases: BTreeSet<&str> = used.iter().map(|n| base_metric(n)).collect();
    let unused: Vec<&&str> = observed
        .iter()
        .filter(|m| !used_bases.contains(**m))
        .collect();
    assert!(unused.is_empty(), "metrics on no panel: {unused:?}");
}

// ---------------------------------------------------------------------------
// Kubernetes.

/// Every manifest in deploy/kubernetes, by file name.
fn manifests() -> BTreeMap<String, Vec<Value>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(root().join(KUBERNETES)).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".yaml") || name.ends_with(".yml") {
            let documents = yaml_documents(&format!("{KUBERNETES}/{name}"));
            for document in &documents {
                for field in ["apiVersion", "kind"] {
                    assert!(document[field].is_string(), "{name}: no {field}");
                }
                if document["kind"] != "Kustomization" {
                    assert!(document["metadata"]["name"].is_string(), "{name}: no name");
                }
            }
            out.insert(name, documents);
        }
    }
    out
}

/// The one object of `kind` among the manifests.
fn object(manifests: &BTreeMap<String, Vec<Value>>, kind: &str) -> Value {
    let found: Vec<&Value> = manifests
        .values()
        .flatten()
        .filter(|d| d["kind"] == kind)
        .collect();
    assert_eq!(found.len(), 1, "one {kind} in {KUBERNETES}");
    found[0].clone()
}

/// The Deployment's one container.
fn container(deployment: &Value) -> Value {
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(containers.len(), 1, "one container");
    containers[0].clone()
}

fn args(container: &Value) -> Vec<String> {
    container["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| text(a, "an argument").to_owned())
        .collect()
}

/// The value of `--flag value` or `--flag=value` in `args`.
fn flag(args: &[String], name: &str) -> Option<String> {
    let with_equals = format!("{name}=");
    args.iter().enumerate().find_map(|(i, a)| {
        if a == name {
            args.get(i + 1).cloned()
        } else {
            a.strip_prefix(&with_equals).map(str::to_owned)
        }
    })
}

/// The port of `host:port`.
fn port_of(address: &str) -> u64 {
    address
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {address:?}"))
}

/// A port given as a number or as the name of one of the container's ports.
fn resolve_port(container: &Value, port: &Value) -> u64 {
    match port {
        Value::Number(n) => n.as_u64().unwrap(),
        Value::String(name) => {
            if let Ok(number) = name.parse() {
                return number;
            }
            container["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["name"] == *name)
                .and_then(|p| p["containerPort"].as_u64())
                .unwrap_or_else(|| panic!("no container port named {name:?}"))
        }
        other => panic!("a port is {other}"),
    }
}

/// `(kind, httpGet)` of each of the container's probes.
fn probes(container: &Value) -> Vec<(&'static str, Value)> {
    ["startupProbe", "livenessProbe", "readinessProbe"]
        .into_iter()
        .filter(|kind| !container[*kind].is_null())
        .map(|kind| {
            let get = container[kind]["httpGet"].clone();
            assert!(get.is_object(), "{kind} is not an httpGet probe");
            (kind, get)
        })
        .collect()
}

fn labels_match(selector: &Value, labels: &Value) -> bool {
    let selector = selector.as_object().expect("a selector");
    !selector.is_empty() && selector.iter().all(|(k, v)| labels[k] == *v)
}

/// Writes the project as the Deployment's ConfigMap volume mounts it into
/// `dir`, the way the kubelet lays it out: the files in a hidden timestamped
/// folder, `..data` linking to it, and each top-level entry linking into
/// `..data`. Returns the mounted paths.
fn mount_project(manifests: &BTreeMap<String, Vec<Value>>, dir: &Path) -> BTreeSet<String> {
    let deployment = object(manifests, "Deployment");
    let config_map = object(manifests, "ConfigMap");
    let data = config_map["data"]
        .as_object()
        .expect("the ConfigMap's data");
    let pod = &deployment["spec"]["template"]["spec"];
    let mount = container(&deployment)["volumeMounts"]
        .as_array()
        .expect("volumeMounts")
        .iter()
        .find(|m| m["mountPath"] == flag_project_dir(&deployment).as_str())
        .cloned()
        .expect("a volume mounted at the project folder that serve is given");
    let volume = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == mount["name"])
        .cloned()
        .expect("the mounted volume");
    assert_eq!(
        volume["configMap"]["name"], config_map["metadata"]["name"],
        "the project volume is the ConfigMap"
    );
    let items = volume["configMap"]["items"]
        .as_array()
        .expect("items: a ConfigMap is flat, the items give the project its folders");
    let timestamped = dir.join("..2026_01_01_00_00_00.000000001");
    let mut paths = BTreeSet::new();
    let mut top = BTreeSet::new();
    for item in items {
        let key = text(&item["key"], "an item's key");
        let path = text(&item["path"], "an item's path");
        let content = data
            .get(key)
            .unwrap_or_else(|| panic!("item {key:?} is not in the ConfigMap"));
        assert!(
            !path.starts_with('/') && !path.split('/').any(|p| p == ".." || p.is_empty()),
            "item path {path:?}"
        );
        assert!(paths.insert(path.to_owned()), "two items at {path}");
        let to = timestamped.join(path);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(&to, text(content, "a ConfigMap value")).unwrap();
        top.insert(path.split('/').next().unwrap().to_owned());
    }
    let keys: BTreeSet<&str> = items.iter().map(|i| i["key"].as_str().unwrap()).collect();
    let unmounted: Vec<&String> = data.keys().filter(|k| !keys.contains(k.as_str())).collect();
    assert!(
        unmounted.is_empty(),
        "ConfigMap keys without an item: {unmounted:?}"
    );
    std::os::unix::fs::symlink(timestamped.file_name().unwrap(), dir.join("..data")).unwrap();
    for entry in top {
        std::os::unix::fs::symlink(Path::new("..data").join(&entry), dir.join(&entry)).unwrap();
    }
    paths
}

/// The project folder that the Deployment gives `serve` (`serve DIR ...`).
fn flag_project_dir(deployment: &Value) -> String {
    let args = args(&container(deployment));
    assert_eq!(args.first().map(String::as_str), Some("serve"), "{args:?}");
    let dir = args.get(1).expect("serve's project folder");
    assert!(!dir.starts_with("--"), "serve DIR first: {args:?}");
    dir.clone()
}

/// The example project's files, by path relative to it.
fn example_files() -> BTreeMap<String, String> {
    fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, base, out);
            } else {
                let relative = path
                    .strip_prefix(base)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned();
                out.insert(relative, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let base = root().join(EXAMPLE);
    let mut out = BTreeMap::new();
    walk(&base, &base, &mut out);
    out
}

#[test]
fn the_manifests_parse_and_agree_with_each_other() {
    let manifests = manifests();

    // kubectl apply -k: its resources exist and parse.
    let kustomization = &manifests["kustomization.yaml"][0];
    let resources: Vec<&str> = kustomization["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    for resource in &resources {
        assert!(
            manifests.contains_key(*resource),
            "{resource} is listed but missing"
        );
    }
    for kind in ["ConfigMap", "Deployment", "Service"] {
        assert!(
            resources
                .iter()
                .any(|r| manifests[*r].iter().any(|d| d["kind"] == kind)),
            "kustomization.yaml does not apply the {kind}"
        );
    }
    for needs_operator in ["ServiceMonitor", "PrometheusRule"] {
        object(&manifests, needs_operator);
    }

    let deployment = object(&manifests, "Deployment");
    let container = container(&deployment);
    let command = container["command"].as_array().expect("command");
    assert_eq!(command.len(), 1);
    assert_eq!(command[0], "schedule-sync");
    let args = args(&container);

    // One port everywhere: --listen, containerPort, probes, Service, scrape.
    let listen = flag(&args, "--listen").expect("--listen in the args");
    assert!(
        listen.starts_with("0.0.0.0:") || listen.starts_with("[::]:"),
        "serve must listen on every interface in a pod, not {listen}"
    );
    let port = port_of(&listen);
    let ports = container["ports"].as_array().expect("ports");
    assert_eq!(ports.len(), 1, "{ports:?}");
    assert_eq!(
        ports[0]["containerPort"].as_u64(),
        Some(port),
        "containerPort"
    );
    let probes = probes(&container);
    for (kind, get) in &probes {
        assert_eq!(resolve_port(&container, &get["port"]), port, "{kind} port");
    }
    let path_of = |kind: &str| {
        probes
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, get)| get["path"].clone())
            .unwrap_or_else(|| panic!("no {kind}"))
    };
    assert_eq!(path_of("livenessProbe"), "/livez");
    assert_eq!(path_of("readinessProbe"), "/readyz");
    // Readiness waits for Temporal: a startup probe on it would restart the
    // pod while Temporal is away.
    assert_eq!(path_of("startupProbe"), "/livez");

    let service = object(&manifests, "Service");
    let service_ports = service["spec"]["ports"].as_array().expect("Service ports");
    assert_eq!(service_ports.len(), 1);
    let service_port = &service_ports[0];
    assert_eq!(
        resolve_port(&container, &service_port["targetPort"]),
        port,
        "the Service's targetPort"
    );
    let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert!(
        labels_match(&service["spec"]["selector"], pod_labels),
        "the Service selects the pods"
    );
    assert!(
        labels_match(&deployment["spec"]["selector"]["matchLabels"], pod_labels),
        "the Deployment selects its pods"
    );
    let annotations = &service["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], port.to_string());
    assert_eq!(annotations["prometheus.io/path"], "/metrics");
    assert_eq!(
        service["spec"]["publishNotReadyAddresses"], true,
        "a pod that is not ready still has its metrics scraped"
    );

    let monitor = object(&manifests, "ServiceMonitor");
    assert!(
        labels_match(
            &monitor["spec"]["selector"]["matchLabels"],
            &service["metadata"]["labels"]
        ),
        "the ServiceMonitor selects the Service"
    );
    let endpoint = &monitor["spec"]["endpoints"][0];
    assert_eq!(
        endpoint["port"], service_port["name"],
        "the ServiceMonitor's port"
    );
    assert_eq!(endpoint["path"], "/metrics");

    // Temporal's address comes from the environment, not a flag.
    assert!(flag(&args, "--address").is_none(), "{args:?}");
    let env = container["env"].as_array().expect("env");
    let address = env
        .iter()
        .find(|e| e["name"] == "TEMPORAL_ADDRESS")
        .expect("TEMPORAL_ADDRESS in env");
    assert!(port_of(text(&address["value"], "TEMPORAL_ADDRESS")) > 0);

    // The ConfigMap, mounted with its items, is the example project.
    let dir = tempfile::tempdir().unwrap();
    let mounted = mount_project(&manifests, dir.path());
    let example = example_files();
    assert_eq!(
        mounted,
        example.keys().cloned().collect::<BTreeSet<_>>(),
        "the mounted files are {EXAMPLE}'s"
    );
    for (path, content) in &example {
        assert_eq!(
            &std::fs::read_to_string(dir.path().join(path)).unwrap(),
            content,
            "{path} in the ConfigMap differs from {EXAMPLE}"
        );
    }
    // And it loads through the kubelet's links as the example does.
    let from_mount = schedule_sync::project::load(dir.path()).expect("the mounted project loads");
    let from_example = schedule_sync::project::load(&root().join(EXAMPLE)).unwrap();
    assert_eq!(from_mount.project, from_example.project);
    assert_eq!(
        from_mount.warnings.len(),
        from_example.warnings.len(),
        "{:?}",
        from_mount.warnings
    );
}

// ---------------------------------------------------------------------------
// A running serve.

/// Whether the Prometheus text `metrics` has a sample of the series `name`.
fn has_series(metrics: &str, name: &str) -> bool {
    metrics.lines().any(|line| {
        line.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
    })
}

#[tokio::test]
async fn serve_with_the_deployments_arguments_answers_every_probe_and_exports_every_metric() {
    let manifests = manifests();
    let deployment = object(&manifests, "Deployment");
    let container = container(&deployment);
    let project = tempfile::tempdir().unwrap();
    mount_project(&manifests, project.path());

    // The Deployment's arguments, with the project where the test mounted
    // it and a free loopback port; Temporal's address from the environment,
    // as in the pod, pointing at a dev server.
    let server = support::dev_server().await;
    let address = format!("127.0.0.1:{}", free_port().unwrap());
    let mut args = args(&container);
    args[1] = project.path().to_str().unwrap().to_owned();
    let listen = args
        .iter()
        .position(|a| a == "--listen")
        .expect("--listen VALUE in the args");
    args[listen + 1] = address.clone();
    let mut command = Command::new(env!("CARGO_BIN_EXE_schedule-sync"));
    command
        .args(&args)
        .env_remove("TEMPORAL_ADDRESS")
        .env_remove("TEMPORAL_NAMESPACE")
        .env_remove("TEMPORAL_API_KEY")
        .env_remove("TEMPORAL_CONFIG_FILE")
        .env_remove("TEMPORAL_PROFILE");
    for variable in container["env"].as_array().unwrap() {
        if let Some(value) = variable["value"].as_str() {
            command.env(variable["name"].as_str().unwrap(), value);
        }
    }
    command
        .env("TEMPORAL_ADDRESS", server.address())
        .env("TEMPORAL_NAMESPACE", server.namespace());
    let serve = Serve::spawn(command, &address);

    // Every probe path is served from the start: 200 or 503, never 404.
    let probes = probes(&container);
    assert_eq!(probes.len(), 3);
    for (kind, get) in &probes {
        let path = text(&get["path"], "a probe path");
        let (code, body) = serve.get_text(path);
        assert!(
            code == 200 || code == 503,
            "{kind} {path} answered {code}: {body}"
        );
    }
    let health = serve
        .wait_for("/healthz", Duration::from_secs(60), |code, h| {
            code == 200 && h["state"] == "synced"
        })
        .await;
    assert_eq!(health["schedules"]["in_sync"], 4, "{health}");
    for (kind, get) in &probes {
        let path = text(&get["path"], "a probe path");
        let (code, body) = serve.get_text(path);
        assert_eq!(code, 200, "{kind} {path} once synced: {body}");
    }

    // A reload (SIGHUP) makes the reload counter appear, as any reload does.
    let status = Command::new("kill")
        .args(["-HUP", &serve.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    serve
        .wait_for("/healthz", Duration::from_secs(60), |code, h| {
            code == 200 && { h["config_revision"] == 2 && h["state"] == "synced" }
        })
        .await;

    // The scrape paths of the Service and the ServiceMonitor.
    let service = object(&manifests, "Service");
    let monitor = object(&manifests, "ServiceMonitor");
    let scrape_paths = [
        text(
            &service["metadata"]["annotations"]["prometheus.io/path"],
            "the scrape path",
        ),
        text(
            &monitor["spec"]["endpoints"][0]["path"],
            "the ServiceMonitor path",
        ),
    ];
    // Every metric of the dashboard and the alerts, as a series (but those
    // of one series per schedule, which are opt-in).
    let per_schedule = per_schedule_metrics();
    let wanted: BTreeSet<String> = used_metric_names()
        .into_iter()
        .filter(|name| !per_schedule.contains(base_metric(name)))
        .collect();
    assert!(wanted.len() >= 10, "{wanted:?}");
    let started = Instant::now();
    let metrics = loop {
        let (code, metrics) = serve.get_text(scrape_paths[0]);
        assert_eq!(code, 200, "{}: {metrics}", scrape_paths[0]);
        if wanted.iter().all(|name| has_series(&metrics, name))
            || started.elapsed() > Duration::from_secs(15)
        {
            break metrics;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let missing: Vec<&String> = wanted.iter().filter(|n| !has_series(&metrics, n)).collect();
    assert!(
        missing.is_empty(),
        "serve does not export {missing:?}:\n{metrics}"
    );
    // Every series names its project, so that the alerts and the dashboard
    // tell the projects of one host apart.
    for line in metrics.lines().filter(|l| l.starts_with("schedule_sync_")) {
        assert!(
            line.contains("project=\""),
            "a series without a project: {line}"
        );
    }
    for name in &wanted {
        if base_metric(name) != name {
            assert!(
                metrics.contains(&format!("# TYPE {} histogram", base_metric(name))),
                "{} is not a histogram:\n{metrics}",
                base_metric(name)
            );
        }
    }
    let (code, body) = serve.get_text(scrape_paths[1]);
    assert_eq!(code, 200);
    assert!(has_series(&body, "schedule_sync_state"), "{body}");
    drop(serve);
    server.stop();
}
