//! Editors correct the machine: their own tags, a re-run of one image, deletion.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use imgpipe_auth::Principal;
use imgpipe_contract::db::{Applied, Decision};
use imgpipe_contract::document::{ImageDocument, MAX_EDITOR_TAG_CHARS, MAX_EDITOR_TAGS, Status};
use imgpipe_contract::event::{CreatedObject, S3EventRecord, object_created_message, sequencer_at};
use imgpipe_contract::keys::Role;
use serde::Deserialize;
use serde_json::json;
use tracing::{info, warn};

use super::{ApiError, QueryState, visible, with_links};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Patch {
    editor_tags: Vec<String>,
}

/// Trimmed, without repeats (ignoring case, the first spelling kept), each a short line of
/// printable text.
fn clean_tags(tags: Vec<String>) -> Result<Vec<String>, ApiError> {
    let mut kept: Vec<String> = Vec::new();
    for tag in tags {
        let tag = tag.split_whitespace().collect::<Vec<_>>().join(" ");
        if tag.is_empty() {
            continue;
        }
        if tag.chars().count() > MAX_EDITOR_TAG_CHARS || tag.chars().any(char::is_control) {
            return Err(ApiError::bad_request(format!(
                "a tag is a line of at most {MAX_EDITOR_TAG_CHARS} characters: {:?} is not",
                tag.chars().take(80).collect::<String>()
            )));
        }
        if !kept.iter().any(|k| k.to_lowercase() == tag.to_lowercase()) {
            kept.push(tag);
        }
    }
    if kept.len() > MAX_EDITOR_TAGS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_EDITOR_TAGS} editor tags per image"
        )));
    }
    Ok(kept)
}

fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    // A body that is JSON of the wrong shape is as much a bad request as one that is not JSON.
    body.map(|Json(b)| b).map_err(|e| match e.status() {
        StatusCode::UNPROCESSABLE_ENTITY => ApiError::bad_request(e.body_text()),
        status => ApiError::new(status, e.body_text()),
    })
}

/// `PATCH /api/images/{id}` with `{"editor_tags": [...]}`: replaces the editor's tags.
pub(super) async fn patch(
    State(state): State<QueryState>,
    caller: Principal,
    Path(id): Path<String>,
    body: Result<Json<Patch>, JsonRejection>,
) -> Result<Json<ImageDocument>, ApiError> {
    caller.require(Role::Editor)?;
    let tags = clean_tags(json_body(body)?.editor_tags)?;
    visible(&state, &caller, &id).await?;
    let change = |current: Option<ImageDocument>| match current {
        Some(doc) if doc.editor_tags == tags => Decision::Unchanged,
        Some(mut doc) => {
            doc.editor_tags = tags.clone();
            Decision::write(doc)
        }
        None => Decision::NotYet,
    };
    if state.meta.update(&id, &change).await? == Applied::NotYet {
        return Err(ApiError::not_found(&id));
    }
    state.feed.bump();
    let doc = state
        .meta
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(&id))?;
    Ok(Json(with_links(doc)))
}

/// `POST /api/images/{id}/reprocess`: every stage runs again on the current original. The
/// image goes back to `pending`, so its card moves through the stages again; the editor's tags
/// stay, the model's are replaced by the new run's.
pub(super) async fn reprocess(
    State(state): State<QueryState>,
    caller: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Role::Editor)?;
    let doc = visible(&state, &caller, &id).await?;
    let original = &doc.original;
    let record = S3EventRecord::object_created(
        "imgpipe:reprocess",
        &state.region,
        "ObjectCreated:Put",
        CreatedObject {
            bucket: original.bucket.clone(),
            key: original.key.clone(),
            size: original.size,
            etag: original.etag.clone(),
            content_type: original.content_type.clone(),
            sequencer: original
                .sequencer
                .clone()
                .unwrap_or_else(|| sequencer_at(doc.created_at)),
        },
    );
    let message = object_created_message(record)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let etag = original.etag.clone();
    let change = |current: Option<ImageDocument>| match current {
        // Only the version asked about: an original replaced meanwhile is processed anyway.
        Some(mut doc) if doc.original.etag == etag => {
            doc.status = Status::Pending;
            doc.error = None;
            doc.retrying = None;
            Decision::write(doc)
        }
        _ => Decision::Unchanged,
    };
    state.meta.update(&id, &change).await?;
    state.feed.bump();
    if let Err(e) = state.bus.publish(message).await {
        warn!(error = %e, image_id = %id, "cannot publish the reprocess event");
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "bus unavailable",
        ));
    }
    info!(image_id = %id, by = %caller.key_id, "reprocess requested");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": id, "status": "pending" })),
    )
        .into_response())
}

/// `DELETE /api/images/{id}`: the original, its renditions, then the document. Objects go
/// first: if the store fails, the document still points at what is left and a retry of the
/// DELETE finishes the job (deleting a missing object succeeds).
pub(super) async fn delete(
    State(state): State<QueryState>,
    caller: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Editor)?;
    let doc = visible(&state, &caller, &id).await?;
    let mut objects = vec![(doc.original.bucket.clone(), doc.original.key.clone())];
    if let Some(r) = &doc.renditions {
        objects.push((r.thumb.bucket.clone(), r.thumb.key.clone()));
        objects.push((r.preview.bucket.clone(), r.preview.key.clone()));
    }
    for (bucket, key) in &objects {
        state.store.delete(bucket, key).await?;
    }
    state.meta.delete(&id).await?;
    state.feed.bump();
    info!(image_id = %id, by = %caller.key_id, "image deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_tags_are_trimmed_deduplicated_and_bounded() {
        let tags = clean_tags(vec![
            "  Election   2026 ".into(),
            "election 2026".into(),
            "".into(),
            "Berlin".into(),
        ])
        .expect("clean");
        assert_eq!(tags, vec!["Election 2026".to_owned(), "Berlin".to_owned()]);
        assert!(clean_tags(vec!["x".repeat(MAX_EDITOR_TAG_CHARS + 1)]).is_err());
        assert!(clean_tags(vec!["a\u{7}b".into()]).is_err());
        let many = (0..=MAX_EDITOR_TAGS).map(|n| format!("t{n}")).collect();
        assert!(clean_tags(many).is_err());
    }
}
