//! The endpoints of dockerd features Keel does not have, answered as a
//! dockerd without them answers: swarm mode (`/swarm`, `/nodes`,
//! `/services`, `/tasks`, `/secrets`, `/configs`) as a node that is in no
//! swarm, and `/plugins` as a daemon with no plugin installed.

use hyper::{Method, StatusCode};

use crate::http::{ApiError, Reply, json};

/// moby's daemon/cluster `errNoManager` for a node outside any swarm.
const NOT_A_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";
/// moby's `errNoSwarm`, which only a leave gives.
const NOT_IN_A_SWARM: &str = "This node is not part of a swarm";

/// The answer to a swarm or plugin endpoint, or None for other paths.
pub fn answer(method: &Method, path: &str) -> Option<Result<Reply, ApiError>> {
    let path = path.strip_prefix('/')?;
    let (kind, rest) = path.split_once('/').unwrap_or((path, ""));
    let segments: Vec<&str> = match rest {
        "" => Vec::new(),
        rest => rest.split('/').collect(),
    };
    match kind {
        "swarm" => swarm(method, &segments).map(Err),
        "nodes" | "services" | "tasks" | "secrets" | "configs" => {
            is_cluster_route(method, kind, &segments).then(|| {
                Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    NOT_A_MANAGER,
                ))
            })
        }
        "plugins" => plugins(method, rest),
        _ => None,
    }
}

/// moby's `/swarm` routes: every one needs a swarm this node is not in,
/// but init and join, which would make one.
fn swarm(method: &Method, segments: &[&str]) -> Option<ApiError> {
    let unavailable = |message| Some(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message));
    match (method, segments) {
        (&Method::GET, [] | ["unlockkey"]) | (&Method::POST, ["update" | "unlock"]) => {
            unavailable(NOT_A_MANAGER)
        }
        (&Method::POST, ["leave"]) => unavailable(NOT_IN_A_SWARM),
        (&Method::POST, ["init" | "join"]) => Some(not_implemented(
            "Keel does not run swarm mode: this node cannot init or join a swarm",
        )),
        _ => None,
    }
}

/// Whether moby routes this request to the cluster (a manager's API).
fn is_cluster_route(method: &Method, kind: &str, segments: &[&str]) -> bool {
    let has_create = matches!(kind, "services" | "secrets" | "configs");
    let has_update = kind != "tasks";
    let has_logs = matches!(kind, "services" | "tasks");
    match (method, segments) {
        (&Method::GET, [] | [_]) => true,
        (&Method::POST, ["create"]) => has_create,
        (&Method::DELETE, [_]) => kind != "tasks",
        (&Method::POST, [_, "update"]) => has_update,
        (&Method::GET, [_, "logs"]) => has_logs,
        _ => false,
    }
}

/// moby's `/plugins` routes with no plugin installed: the list is empty,
/// any plugin named is not found, and installing one is refused.
fn plugins(method: &Method, rest: &str) -> Option<Result<Reply, ApiError>> {
    let installs = "Keel does not run plugins: its volume, network and log drivers are built in";
    match (method, rest) {
        (&Method::GET, "") => {
            return Some(Ok(json(StatusCode::OK, &Vec::<serde_json::Value>::new())));
        }
        (&Method::GET, "privileges") | (&Method::POST, "pull" | "create") => {
            return Some(Err(not_implemented(installs)));
        }
        _ => {}
    }
    // Plugin names hold slashes (`vieux/sshfs:latest`): the action is the
    // last segment.
    let name = match (method, rest.rsplit_once('/')) {
        (&Method::DELETE, _) => rest,
        (&Method::GET, Some((name, "json"))) => name,
        (&Method::POST, Some((name, "enable" | "disable" | "push" | "upgrade" | "set"))) => name,
        _ => return None,
    };
    Some(Err(ApiError::new(
        StatusCode::NOT_FOUND,
        format!("plugin {name:?} not found"),
    )))
}

/// A feature Keel does not have. 501, moby's errdefs.NotImplemented: the
/// docker CLI reads it as that (errdefs.IsNotImplemented, which
/// `system prune` skips) and prints the message, as docker-py raises it.
fn not_implemented(message: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_IMPLEMENTED, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(method: Method, path: &str) -> Option<StatusCode> {
        answer(&method, path).map(|answer| match answer {
            Ok(reply) => reply.status(),
            Err(error) => error.status,
        })
    }

    fn message(method: Method, path: &str) -> String {
        match answer(&method, path) {
            Some(Err(error)) => error.message,
            other => panic!("{path}: not an error: {other:?}"),
        }
    }

    #[test]
    fn cluster_routes_need_a_manager_and_others_are_not_theirs() {
        let unavailable = Some(StatusCode::SERVICE_UNAVAILABLE);
        for (method, path) in [
            (Method::GET, "/swarm"),
            (Method::GET, "/swarm/unlockkey"),
            (Method::POST, "/swarm/update"),
            (Method::POST, "/swarm/unlock"),
            (Method::GET, "/nodes"),
            (Method::POST, "/nodes/n1/update"),
            (Method::POST, "/services/create"),
            (Method::GET, "/services/web/logs"),
            (Method::DELETE, "/secrets/s1"),
            (Method::GET, "/tasks/t1"),
            (Method::POST, "/configs/c1/update"),
        ] {
            assert_eq!(status(method.clone(), path), unavailable, "{method} {path}");
            assert_eq!(message(method, path), NOT_A_MANAGER);
        }
        assert_eq!(message(Method::POST, "/swarm/leave"), NOT_IN_A_SWARM);
        assert_eq!(
            status(Method::POST, "/swarm/init"),
            Some(StatusCode::NOT_IMPLEMENTED)
        );
        assert_eq!(status(Method::DELETE, "/tasks/t1"), None);
        assert_eq!(status(Method::POST, "/nodes/create"), None);
        assert_eq!(status(Method::GET, "/swarmy"), None);
        assert_eq!(status(Method::GET, "/containers/json"), None);
    }

    #[test]
    fn no_plugin_is_installed_nor_can_be() {
        assert_eq!(status(Method::GET, "/plugins"), Some(StatusCode::OK));
        assert_eq!(
            message(Method::GET, "/plugins/vieux/sshfs:latest/json"),
            "plugin \"vieux/sshfs:latest\" not found"
        );
        assert_eq!(
            message(Method::DELETE, "/plugins/sshfs"),
            "plugin \"sshfs\" not found"
        );
        assert_eq!(
            status(Method::POST, "/plugins/sshfs/enable"),
            Some(StatusCode::NOT_FOUND)
        );
        assert_eq!(
            status(Method::POST, "/plugins/pull"),
            Some(StatusCode::NOT_IMPLEMENTED)
        );
        assert_eq!(
            status(Method::GET, "/plugins/privileges"),
            Some(StatusCode::NOT_IMPLEMENTED)
        );
        assert_eq!(status(Method::PUT, "/plugins/x"), None);
    }
}
