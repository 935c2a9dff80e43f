//! `GET /api/events`: server-sent events of every document change the caller may see, read
//! from the database's change feed, so every process serves every change (whoever wrote it) and
//! a browser that reconnects (`Last-Event-ID`) after a restart gets what it missed.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use imgpipe_auth::Principal;
use imgpipe_contract::db::FeedEntry;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;
use tracing::warn;

use super::{ApiError, QueryState, only_own_uploads, with_links};

/// How often a stream looks at the feed when nothing in this process said it changed (the
/// writer may be another process).
const POLL: Duration = Duration::from_millis(500);
/// Feed entries read at a time.
const BATCH: u32 = 200;
/// How long a browser waits before reconnecting.
const RECONNECT: Duration = Duration::from_secs(2);

/// Bumped by whoever writes a document in this process; streams wake at once instead of at
/// their next poll.
#[derive(Clone)]
pub struct FeedSignal(pub(super) Arc<watch::Sender<u64>>);

impl FeedSignal {
    pub fn bump(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct Since {
    /// Where to start when the browser has no `Last-Event-ID` yet (a page that kept one).
    since: Option<i64>,
}

pub(super) async fn events(
    State(state): State<QueryState>,
    caller: Principal,
    Query(since): Query<Since>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .or(since.since);
    let after = match resume {
        Some(seq) => seq.max(0),
        None => state.meta.feed_head().await?,
    };
    let hello = Event::default()
        .event("ready")
        .id(after.to_string())
        .retry(RECONNECT)
        .data(json!({ "seq": after }).to_string());
    let reader = Reader {
        wake: state.feed.subscribe(),
        state,
        caller,
        after,
        pending: VecDeque::from([hello]),
    };
    let sse =
        Sse::new(stream(reader)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)));
    let mut response = sse.into_response();
    // Proxies (nginx) would otherwise hold the stream back in their buffers.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

struct Reader {
    state: QueryState,
    caller: Principal,
    after: i64,
    wake: watch::Receiver<u64>,
    pending: VecDeque<Event>,
}

fn stream(reader: Reader) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold(reader, |mut r| async move {
        loop {
            if let Some(event) = r.pending.pop_front() {
                return Some((Ok(event), r));
            }
            if r.state.stopping.is_cancelled() {
                return None;
            }
            match r.read().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => warn!(error = ?e, "cannot read the change feed"),
            }
            let stopping = r.state.stopping.clone();
            tokio::select! {
                _ = r.wake.changed() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = stopping.cancelled() => return None,
            }
        }
    })
}

impl Reader {
    /// Reads the next entries into events; whether there were any.
    async fn read(&mut self) -> Result<bool, ApiError> {
        let entries = self
            .state
            .meta
            .feed(self.after, &self.caller.tenants, BATCH)
            .await?;
        let Some(last) = entries.last() else {
            return Ok(false);
        };
        self.after = last.seq;
        // An image written several times in the batch is sent once, as it is now.
        let mut latest: Vec<&FeedEntry> = Vec::new();
        for entry in entries.iter().rev() {
            if !latest.iter().any(|e| e.image_id == entry.image_id) {
                latest.push(entry);
            }
        }
        latest.reverse();
        for entry in latest {
            if let Some(event) = self.event(entry).await? {
                self.pending.push_back(event);
            }
        }
        // The batch's end, so a reconnect resumes after it even if its last entries were not
        // this caller's to see.
        if self.pending.is_empty() {
            self.pending.push_back(
                Event::default()
                    .event("seq")
                    .id(self.after.to_string())
                    .data("{}"),
            );
        }
        Ok(true)
    }

    async fn event(&self, entry: &FeedEntry) -> Result<Option<Event>, ApiError> {
        let meta = &self.state.meta;
        if let Some(key_id) = only_own_uploads(&self.caller)
            && !entry.deleted
            && meta.uploader(&entry.image_id).await?.as_deref() != Some(key_id.as_str())
        {
            return Ok(None);
        }
        let id = entry.seq.to_string();
        if entry.deleted {
            let data = json!({ "id": entry.image_id }).to_string();
            return Ok(Some(Event::default().event("deleted").id(id).data(data)));
        }
        // Gone since: its deletion is a later entry.
        let Some(doc) = meta.get(&entry.image_id).await? else {
            return Ok(None);
        };
        let data = serde_json::to_string(&with_links(doc))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(Some(Event::default().event("image").id(id).data(data)))
    }
}
