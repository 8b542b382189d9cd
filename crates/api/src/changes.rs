//! `GET /containers/{id}/changes`: what `docker diff` and docker-py's
//! `Container.diff()` read.

use std::sync::Arc;

use hyper::StatusCode;
use keel_api_types::changes::{ChangeType, FilesystemChange};
use keel_image::ChangeKind;

use crate::Daemon;
use crate::http::{ApiError, Reply, blocking, json};

pub async fn changes(daemon: Arc<Daemon>, name: String) -> Result<Reply, ApiError> {
    blocking(move || {
        let changes: Vec<FilesystemChange> = daemon
            .engine
            .changes(&name)?
            .into_iter()
            .map(|change| FilesystemChange {
                path: change.path,
                kind: match change.kind {
                    ChangeKind::Modified => ChangeType::Modified,
                    ChangeKind::Added => ChangeType::Added,
                    ChangeKind::Deleted => ChangeType::Deleted,
                },
            })
            .collect();
        // No changes are null, as Docker's nil list is.
        Ok(json(
            StatusCode::OK,
            &(!changes.is_empty()).then_some(changes),
        ))
    })
    .await
}
