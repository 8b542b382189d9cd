//! What is done to each file before the model is read: its keys checked
//! against the specification, its strings interpolated, and the file
//! merged over those before it as compose merges `-f` files.

use std::collections::BTreeMap;
use std::path::Path;

use serde_norway::{Mapping, Value};

use crate::Error;
use crate::interpolate;
use crate::model::{parse_volume, scalar_text, unknown_key};

const TOP: Keys = Keys {
    supported: &["version", "name", "services", "networks", "volumes"],
    unsupported: &["include", "secrets", "configs", "models"],
};

const SERVICE: Keys = Keys {
    supported: &[
        "command",
        "depends_on",
        "deploy",
        "entrypoint",
        "env_file",
        "environment",
        "healthcheck",
        "image",
        "labels",
        "networks",
        "ports",
        "profiles",
        "restart",
        "stop_grace_period",
        "user",
        "volumes",
        "working_dir",
    ],
    unsupported: &[
        "annotations",
        "attach",
        "blkio_config",
        "build",
        "cap_add",
        "cap_drop",
        "cgroup",
        "cgroup_parent",
        "configs",
        "container_name",
        "cpu_count",
        "cpu_percent",
        "cpu_period",
        "cpu_quota",
        "cpu_rt_period",
        "cpu_rt_runtime",
        "cpu_shares",
        "cpus",
        "cpuset",
        "credential_spec",
        "develop",
        "device_cgroup_rules",
        "devices",
        "dns",
        "dns_opt",
        "dns_search",
        "domainname",
        "expose",
        "extends",
        "external_links",
        "extra_hosts",
        "gpus",
        "group_add",
        "hostname",
        "init",
        "ipc",
        "isolation",
        "label_file",
        "links",
        "logging",
        "mac_address",
        "mem_limit",
        "mem_reservation",
        "mem_swappiness",
        "memswap_limit",
        "models",
        "network_mode",
        "oom_kill_disable",
        "oom_score_adj",
        "pid",
        "pids_limit",
        "platform",
        "post_start",
        "pre_stop",
        "privileged",
        "provider",
        "pull_policy",
        "pull_refresh_after",
        "read_only",
        "runtime",
        "scale",
        "secrets",
        "security_opt",
        "shm_size",
        "stdin_open",
        "stop_signal",
        "storage_opt",
        "sysctls",
        "tmpfs",
        "tty",
        "ulimits",
        "use_api_socket",
        "userns_mode",
        "uts",
        "volumes_from",
    ],
};

const DEPLOY: Keys = Keys {
    supported: &["replicas"],
    unsupported: &[
        "mode",
        "endpoint_mode",
        "labels",
        "rollback_config",
        "update_config",
        "resources",
        "restart_policy",
        "placement",
    ],
};

const HEALTHCHECK: Keys = Keys {
    supported: &[
        "disable",
        "interval",
        "retries",
        "start_interval",
        "start_period",
        "test",
        "timeout",
    ],
    unsupported: &[],
};

const NETWORK: Keys = Keys {
    supported: &["name", "driver", "ipam", "labels"],
    unsupported: &[
        "attachable",
        "driver_opts",
        "enable_ipv4",
        "enable_ipv6",
        "external",
        "internal",
    ],
};

const IPAM: Keys = Keys {
    supported: &["driver", "config"],
    unsupported: &["options"],
};

const IPAM_POOL: Keys = Keys {
    supported: &["subnet", "gateway"],
    unsupported: &["ip_range", "aux_addresses"],
};

const VOLUME: Keys = Keys {
    supported: &["name", "driver", "labels"],
    unsupported: &["driver_opts", "external"],
};

/// The keys a mapping of the specification may have: those Keel acts on
/// and those it refuses for now.
struct Keys {
    supported: &'static [&'static str],
    unsupported: &'static [&'static str],
}

impl Keys {
    fn check(&self, file: &Path, location: &str, value: &Value) -> Result<(), Error> {
        let Value::Mapping(mapping) = value else {
            return Ok(());
        };
        let Some(key) = unknown_key(mapping, self.supported) else {
            return Ok(());
        };
        let (file, location) = (file.to_owned(), location.to_owned());
        Err(match self.unsupported.contains(&key.as_str()) {
            true => Error::Unsupported {
                file,
                location,
                key,
            },
            false => Error::UnknownKey {
                file,
                location,
                key,
            },
        })
    }
}

/// Every key of `document` known and acted on, or an error naming the
/// first that is not, with where it is.
pub fn check_keys(file: &Path, document: &Mapping) -> Result<(), Error> {
    TOP.check(file, "(root)", &Value::Mapping(document.clone()))?;
    for (section, keys) in [("networks", &NETWORK), ("volumes", &VOLUME)] {
        for (name, value) in entries(document, section) {
            let location = format!("{section}.{name}");
            keys.check(file, &location, value)?;
            if section == "networks"
                && let Some(ipam) = value.get("ipam")
            {
                IPAM.check(file, &format!("{location}.ipam"), ipam)?;
                for (i, pool) in sequence(ipam.get("config")).iter().enumerate() {
                    IPAM_POOL.check(file, &format!("{location}.ipam.config[{i}]"), pool)?;
                }
            }
        }
    }
    for (name, service) in entries(document, "services") {
        let location = format!("services.{name}");
        SERVICE.check(file, &location, service)?;
        for (key, keys) in [("deploy", &DEPLOY), ("healthcheck", &HEALTHCHECK)] {
            if let Some(value) = service.get(key) {
                keys.check(file, &format!("{location}.{key}"), value)?;
            }
        }
    }
    Ok(())
}

fn entries<'a>(document: &'a Mapping, section: &str) -> Vec<(String, &'a Value)> {
    match document.get(section) {
        Some(Value::Mapping(items)) => items
            .iter()
            .map(|(key, value)| (scalar_text(key).unwrap_or_default(), value))
            .collect(),
        _ => Vec::new(),
    }
}

fn sequence(value: Option<&Value>) -> &[Value] {
    match value {
        Some(Value::Sequence(items)) => items,
        _ => &[],
    }
}

/// Every string value of the document with its variables substituted
/// (keys are left as written, as compose leaves them).
pub fn interpolate(document: &mut Mapping, vars: &BTreeMap<String, String>) -> Result<(), Error> {
    fn walk(
        value: &mut Value,
        location: &str,
        vars: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        match value {
            Value::String(text) => {
                *text = interpolate::substitute(text, vars).map_err(|failure| {
                    Error::Interpolation {
                        location: location.to_owned(),
                        failure,
                    }
                })?;
            }
            Value::Sequence(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    walk(item, &format!("{location}[{i}]"), vars)?;
                }
            }
            Value::Mapping(entries) => {
                for (key, item) in entries.iter_mut() {
                    let key = scalar_text(key).unwrap_or_default();
                    let location = match location.is_empty() {
                        true => key,
                        false => format!("{location}.{key}"),
                    };
                    walk(item, &location, vars)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
    for (key, value) in document.iter_mut() {
        walk(value, &scalar_text(key).unwrap_or_default(), vars)?;
    }
    Ok(())
}

/// `over` merged into `base` as compose merges a later `-f` file.
pub fn merge_file(base: &mut Mapping, over: Mapping) {
    for (key, value) in over {
        match (key.as_str(), base.get_mut(&key)) {
            (Some("services"), Some(Value::Mapping(services))) => {
                if let Value::Mapping(over_services) = value {
                    for (name, service) in over_services {
                        match services.get_mut(&name) {
                            Some(Value::Mapping(existing)) => {
                                if let Value::Mapping(service) = service {
                                    merge_service(existing, service);
                                }
                            }
                            _ => {
                                services.insert(name, service);
                            }
                        }
                    }
                }
            }
            (_, Some(existing)) => merge_value(existing, value),
            (_, None) => {
                base.insert(key, value);
            }
        }
    }
}

/// Mappings merge key by key, anything else is replaced.
fn merge_value(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(base), Value::Mapping(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(existing) => merge_value(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

/// A later file's service over an earlier one's: environments, labels,
/// dependencies and networks merge by key, ports and env files add up,
/// volumes replace those on the same target, the rest as [`merge_value`].
fn merge_service(base: &mut Mapping, over: Mapping) {
    for (key, value) in over {
        let name = key.as_str().unwrap_or_default().to_owned();
        let Some(existing) = base.get_mut(&key) else {
            base.insert(key, value);
            continue;
        };
        match name.as_str() {
            "environment" | "labels" | "depends_on" | "networks" => {
                let mut merged = keyed(existing, &name);
                if let (Value::Mapping(over), Value::Mapping(merged)) =
                    (keyed(&value, &name), &mut merged)
                {
                    for (k, v) in over {
                        merged.insert(k, v);
                    }
                }
                *existing = merged;
            }
            "ports" | "env_file" | "profiles" => {
                let mut items = as_list(existing);
                for item in as_list(&value) {
                    if !items.contains(&item) {
                        items.push(item);
                    }
                }
                *existing = Value::Sequence(items);
            }
            "volumes" => {
                let target = |item: &Value| {
                    item.as_str()
                        .and_then(|text| parse_volume(text).ok())
                        .map(|volume| volume.target)
                };
                let mut items = as_list(existing);
                for item in as_list(&value) {
                    match items
                        .iter()
                        .position(|old| target(old).is_some() && target(old) == target(&item))
                    {
                        Some(at) => items[at] = item,
                        None => items.push(item),
                    }
                }
                *existing = Value::Sequence(items);
            }
            "command" | "entrypoint" => *existing = value,
            _ => merge_value(existing, value),
        }
    }
}

fn as_list(value: &Value) -> Vec<Value> {
    match value {
        Value::Sequence(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// A list form (`- KEY=VALUE`, `- name`) as the mapping it stands for.
fn keyed(value: &Value, key: &str) -> Value {
    let Value::Sequence(items) = value else {
        return value.clone();
    };
    let mut mapping = Mapping::new();
    for item in items {
        let Some(text) = scalar_text(item) else {
            continue;
        };
        let (name, entry) = match (key, text.split_once('=')) {
            ("environment" | "labels", Some((name, value))) => {
                (name.to_owned(), Value::String(value.to_owned()))
            }
            ("depends_on", _) => {
                let mut condition = Mapping::new();
                condition.insert("condition".into(), "service_started".into());
                (text, Value::Mapping(condition))
            }
            _ => (text, Value::Null),
        };
        mapping.insert(Value::String(name), entry);
    }
    Value::Mapping(mapping)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Mapping {
        serde_norway::from_str(text).unwrap()
    }

    #[test]
    fn a_later_file_merges_over_an_earlier_one_as_compose_merges() {
        let mut base = yaml(
            "services:\n  web:\n    image: a\n    command: [sh]\n    environment: [A=1, B=2]\n    ports: [\"80:80\"]\n    volumes: [\"data:/data\", \"/cache\"]\n    depends_on: [db]\n  db:\n    image: db\nnetworks:\n  back:\n    labels: {x: \"1\"}\n",
        );
        let over = yaml(
            "services:\n  web:\n    image: b\n    command: [echo, hi]\n    environment:\n      B: \"3\"\n    ports: [\"81:81\"]\n    volumes: [\"other:/data\"]\n    depends_on:\n      cache:\n        condition: service_healthy\nnetworks:\n  back:\n    labels: {y: \"2\"}\n",
        );
        merge_file(&mut base, over);
        let web = &base["services"]["web"];
        assert_eq!(web["image"], "b");
        assert_eq!(web["command"], yaml("x: [echo, hi]")["x"]);
        assert_eq!(web["environment"]["A"], "1");
        assert_eq!(web["environment"]["B"], "3");
        assert_eq!(web["ports"].as_sequence().unwrap().len(), 2);
        assert_eq!(
            web["volumes"],
            yaml("x: [\"other:/data\", \"/cache\"]")["x"]
        );
        assert_eq!(web["depends_on"]["db"]["condition"], "service_started");
        assert_eq!(web["depends_on"]["cache"]["condition"], "service_healthy");
        assert_eq!(base["services"]["db"]["image"], "db");
        assert_eq!(base["networks"]["back"]["labels"]["x"], "1");
        assert_eq!(base["networks"]["back"]["labels"]["y"], "2");
    }

    #[test]
    fn unknown_and_unsupported_keys_are_named_with_their_service() {
        let file = Path::new("/p/compose.yaml");
        let error = check_keys(
            file,
            &yaml("services:\n  web:\n    image: a\n    frobnicate: 1\n"),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "validating /p/compose.yaml: services.web additional properties 'frobnicate' not allowed"
        );
        let error = check_keys(file, &yaml("services:\n  web:\n    build: .\n")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "/p/compose.yaml: services.web.build is not supported by keel compose yet"
        );
        let error = check_keys(
            file,
            &yaml("networks:\n  n:\n    ipam:\n      config:\n        - subnet: 10.0.0.0/24\n          ip_range: 10.0.0.0/25\n"),
        )
        .unwrap_err();
        assert!(
            error.to_string().ends_with(
                "networks.n.ipam.config[0].ip_range is not supported by keel compose yet"
            ),
            "{error}"
        );
        check_keys(
            file,
            &yaml("x-common: 1\nservices:\n  web:\n    image: a\n    x-note: b\n"),
        )
        .unwrap();
    }

    #[test]
    fn strings_are_interpolated_with_where_they_are() {
        let vars = BTreeMap::from([("TAG".to_owned(), "2".to_owned())]);
        let mut document =
            yaml("services:\n  web:\n    image: app:${TAG}\n    command: [echo, \"$$x\"]\n");
        interpolate(&mut document, &vars).unwrap();
        assert_eq!(document["services"]["web"]["image"], "app:2");
        assert_eq!(document["services"]["web"]["command"][1], "$x");
        let mut document = yaml("services:\n  web:\n    image: ${IMG:?no image}\n");
        let error = interpolate(&mut document, &vars).unwrap_err();
        assert_eq!(
            error.to_string(),
            "error while interpolating services.web.image: required variable IMG is missing a value: no image"
        );
    }
}
