//! `POST /containers/{id}/update`: what `docker update` and docker-py's
//! `Container.update()` send.

use std::sync::Arc;

use hyper::StatusCode;
use hyper::body::Incoming;
use keel_api_types::update::{UpdateConfig, UpdateResponse};
use keel_engine::{Resources, RestartPolicy, Update};

use crate::Daemon;
use crate::http::{ApiError, Reply, blocking, json, read_json};

pub async fn update(daemon: Arc<Daemon>, name: String, body: Incoming) -> Result<Reply, ApiError> {
    let request: UpdateConfig = read_json(body).await?;
    for (field, value) in [
        ("CpuRealtimePeriod", request.cpu_realtime_period),
        ("CpuRealtimeRuntime", request.cpu_realtime_runtime),
    ] {
        if value != 0 {
            return Err(keel_engine::Error::Unsupported(format!("{field} {value}")).into());
        }
    }
    let update = Update {
        resources: Resources {
            memory: request.memory,
            memory_swap: request.memory_swap,
            memory_reservation: request.memory_reservation,
            nano_cpus: request.nano_cpus,
            cpu_shares: request.cpu_shares,
            cpu_quota: request.cpu_quota,
            cpu_period: request.cpu_period,
            cpuset_cpus: request.cpuset_cpus,
            cpuset_mems: request.cpuset_mems,
            blkio_weight: request.blkio_weight,
            ..Resources::default()
        },
        pids_limit: request.pids_limit,
        restart: RestartPolicy {
            name: request.restart_policy.name,
            maximum_retry_count: request.restart_policy.maximum_retry_count,
        },
    };
    blocking(move || {
        let warnings = daemon.engine.update_container(&name, &update)?;
        Ok(json(
            StatusCode::OK,
            &UpdateResponse {
                warnings: (!warnings.is_empty()).then_some(warnings),
            },
        ))
    })
    .await
}
