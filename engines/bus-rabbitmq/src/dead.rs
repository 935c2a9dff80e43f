//! Reading and replaying a subscription queue's dead letters (`P.Q.dead`, see [`super::topology`]).
//! Both take messages from the dead-letter queue unacknowledged on a channel of their own:
//! listing closes that channel, which puts them all back in their order; replaying acknowledges
//! each one only after its copy is confirmed in the subscription queue.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use lapin::message::BasicGetMessage;
use lapin::options::{BasicAckOptions, BasicGetOptions};
use lapin::types::{AMQPValue, ShortString};
use lapin::{Acker, Channel};

use super::link::{Link, close_quietly, publish_confirmed};
use super::topology::{is_not_found, short};
use super::{RECONNECT_PATIENCE, unavailable, wire};
use imgpipe_contract::bus::{BusError, DeadLetter};

/// Takes the next dead letter unacknowledged, or None when there is none (or no such queue).
async fn take(channel: &Channel, dead: &ShortString) -> Result<Option<BasicGetMessage>, BusError> {
    match channel
        .basic_get(dead.clone(), BasicGetOptions::default())
        .await
    {
        Ok(got) => Ok(got),
        // Never declared: the broker closed the channel; no dead letters.
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(unavailable("reading dead letters", e)),
    }
}

fn read(queue: &str, got: BasicGetMessage) -> (DeadLetter, Acker) {
    let delivery = got.delivery;
    let received = wire::received(
        delivery.routing_key.as_str(),
        &delivery.properties,
        delivery.data,
    );
    let letter = DeadLetter {
        queue: queue.to_owned(),
        message: received.message,
        attempts: received.attempt,
        reason: received.dead_reason,
    };
    (letter, delivery.acker)
}

/// Up to `limit` dead letters of `queue`, oldest first, left in place.
pub(super) async fn list(
    link: &Link,
    queue: &str,
    limit: u32,
) -> Result<Vec<DeadLetter>, BusError> {
    let dead = short(&link.names().dead(queue))?;
    link.retrying(RECONNECT_PATIENCE, |live| {
        let dead = dead.clone();
        async move {
            let channel = live.channel().await?;
            let mut letters = Vec::new();
            while letters.len() < limit as usize {
                let Some(got) = take(&channel, &dead).await? else {
                    break;
                };
                letters.push(read(queue, got).0);
            }
            close_quietly(&channel).await;
            Ok(letters)
        }
    })
    .await
}

/// Moves up to `limit` dead letters of `queue` back into it, one at a time: publish the copy
/// (attempt 1) straight into the subscription queue through the default exchange, wait for the
/// broker's confirm, then acknowledge the dead letter. A failure before the acknowledgement
/// leaves the dead letter where it was (the channel's close requeues it); one after the publish
/// leaves a duplicate, never a loss.
pub(super) async fn replay(link: &Link, queue: &str, limit: u32) -> Result<u32, BusError> {
    let names = link.names();
    let dead = short(&names.dead(queue))?;
    let target = names.queue(queue);
    // Ids moved so far, kept across reconnects: a replay interrupted by a dropped connection
    // still moves at most `limit` in all, and a message that a running consumer fails again
    // while we work (back in the dead letters behind us) is not replayed twice in one go.
    let moved: Mutex<HashSet<String>> = Mutex::default();
    let count =
        |moved: &Mutex<HashSet<String>>| moved.lock().unwrap_or_else(PoisonError::into_inner).len();
    let (moved_ref, target) = (&moved, &target);
    link.retrying(RECONNECT_PATIENCE, |live| {
        let dead = dead.clone();
        async move {
            let channel = live.channel().await?;
            let result = async {
                while count(moved_ref) < limit as usize {
                    let Some(got) = take(&channel, &dead).await? else {
                        break;
                    };
                    let (letter, acker) = read(queue, got);
                    let again = moved_ref
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .contains(&letter.message.id);
                    if again {
                        // Left unacknowledged: the channel's close puts it back.
                        break;
                    }
                    let fresh = [(wire::ATTEMPT, AMQPValue::LongInt(1))];
                    let properties = wire::properties(&letter.message, &fresh)?;
                    // Mandatory: should the subscription queue be gone, the broker returns the
                    // copy and the dead letter stays.
                    publish_confirmed(
                        &live.publisher,
                        "",
                        target,
                        true,
                        &letter.message.payload,
                        properties,
                    )
                    .await?;
                    let acked = acker
                        .ack(BasicAckOptions::default())
                        .await
                        .map_err(|e| unavailable("acknowledging a replayed dead letter", e))?;
                    if !acked {
                        // The channel closed under us: the broker puts the dead letter back, and
                        // the copy already published makes it a duplicate, never a loss.
                        return Err(BusError::Unavailable(
                            "the dead letters' channel closed during a replay".to_owned(),
                        ));
                    }
                    moved_ref
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(letter.message.id);
                }
                Ok(())
            }
            .await;
            // Closing after the acknowledgements makes the broker process them first; anything
            // taken but not acknowledged goes back to the dead letters.
            close_quietly(&channel).await;
            result
        }
    })
    .await?;
    Ok(u32::try_from(count(&moved)).unwrap_or(u32::MAX))
}
