//! A booth session's life as a state machine: one enum of states, one of events, and one
//! function, [`apply`], that says where an event takes a session or refuses it.
//!
//! ```text
//! consent ─Consent→ pose ─Capture→ review ─Queue→ queued ─Start→ rendering ─Finish→ done
//!            ↑  └──────Retake──────┘  │             │  ↑──Requeue──┘   │           │
//!            └Consent (again)         │             │                  Fail→ failed │
//! Cancel: consent, pose, review, queued, rendering → cancelled       Delete: done → deleted
//! Abandon (a new couple at the screen): consent, pose, review → cancelled
//! Expire (retention): consent, pose, review, done, failed, cancelled → expired
//! Purge (end of event): every state but the three ends → purged
//! ```
//!
//! `expired`, `purged` and `deleted` are ends: the media are gone and nothing leaves them.
//! The store persists the state as its name ([`SessionState::name`]) and changes it only
//! through [`crate::store::Store::transition`], which applies the event to the state it reads
//! and writes the result in the same statement as a check that the state is still the one it
//! read, so two paths racing (a capture and a cancel) cannot undo each other. The kiosk's
//! list of states (`kiosk-ui/app.js`) and the OpenAPI document's are tested against
//! [`SessionState::ALL`].

use serde::{Deserialize, Serialize};

/// Where a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Created: the consent screen is up.
    Consent,
    /// Both agreed: the couple poses, nothing captured yet (or a retake).
    Pose,
    /// A capture passed the gate and waits for the couple's go.
    Review,
    /// Waiting for the renderer.
    Queued,
    Rendering,
    /// The clip is made and its link works.
    Done,
    Failed,
    Cancelled,
    /// Deleted by retention (its time was up).
    Expired,
    /// Deleted at the end of the event.
    Purged,
    /// Deleted by a guest ("delete my video").
    Deleted,
}

/// What happens to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionEvent {
    /// Both people agree on screen.
    Consent,
    /// A capture passed the gate.
    Capture,
    /// The couple wants another picture.
    Retake,
    /// The couple asks for their clip: a render job is queued.
    Queue,
    /// A restart found its render unfinished: queued again.
    Requeue,
    /// The renderer takes it.
    Start,
    /// The clip is made.
    Finish,
    /// The render failed for good.
    Fail,
    /// The couple (or the kiosk) cancels.
    Cancel,
    /// A new couple came to the screen while this one was still posing.
    Abandon,
    /// Its retention time is up.
    Expire,
    /// The end of the event.
    Purge,
    /// A guest deletes the clip.
    Delete,
}

/// An event a state does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a session that is {from} cannot take {event:?}")]
pub struct Refused {
    pub from: SessionState,
    pub event: SessionEvent,
}

impl SessionState {
    /// Every state, in the order of a session's life.
    pub const ALL: [SessionState; 11] = [
        SessionState::Consent,
        SessionState::Pose,
        SessionState::Review,
        SessionState::Queued,
        SessionState::Rendering,
        SessionState::Done,
        SessionState::Failed,
        SessionState::Cancelled,
        SessionState::Expired,
        SessionState::Purged,
        SessionState::Deleted,
    ];

    /// The state's name, as stored and as the API and the kiosk spell it.
    pub fn name(self) -> &'static str {
        match self {
            SessionState::Consent => "consent",
            SessionState::Pose => "pose",
            SessionState::Review => "review",
            SessionState::Queued => "queued",
            SessionState::Rendering => "rendering",
            SessionState::Done => "done",
            SessionState::Failed => "failed",
            SessionState::Cancelled => "cancelled",
            SessionState::Expired => "expired",
            SessionState::Purged => "purged",
            SessionState::Deleted => "deleted",
        }
    }

    /// The state named `name`.
    pub fn parse(name: &str) -> Option<SessionState> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The couple is still at the screen: consenting, posing or reviewing.
    pub fn at_the_screen(self) -> bool {
        matches!(
            self,
            SessionState::Consent | SessionState::Pose | SessionState::Review
        )
    }

    /// The clip is on its way: queued or rendering.
    pub fn in_the_queue(self) -> bool {
        matches!(self, SessionState::Queued | SessionState::Rendering)
    }

    /// An end: the media are deleted and nothing leaves it.
    pub fn is_end(self) -> bool {
        matches!(
            self,
            SessionState::Expired | SessionState::Purged | SessionState::Deleted
        )
    }
}

impl std::fmt::Display for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where `event` takes a session that is `from`, or why it cannot.
pub fn apply(from: SessionState, event: SessionEvent) -> Result<SessionState, Refused> {
    use SessionEvent as E;
    use SessionState as S;
    let to = match (event, from) {
        (E::Consent, S::Consent | S::Pose) => S::Pose,
        (E::Capture, S::Pose | S::Review) => S::Review,
        (E::Retake, S::Pose | S::Review) => S::Pose,
        (E::Queue, S::Review) => S::Queued,
        (E::Requeue, S::Queued | S::Rendering) => S::Queued,
        (E::Start, S::Queued) => S::Rendering,
        (E::Finish, S::Rendering) => S::Done,
        (E::Fail, S::Queued | S::Rendering) => S::Failed,
        (E::Cancel, s) if s.at_the_screen() || s.in_the_queue() => S::Cancelled,
        (E::Abandon, s) if s.at_the_screen() => S::Cancelled,
        (E::Expire, s) if s.at_the_screen() => S::Expired,
        (E::Expire, S::Done | S::Failed | S::Cancelled) => S::Expired,
        (E::Purge, s) if !s.is_end() => S::Purged,
        (E::Delete, S::Done) => S::Deleted,
        _ => return Err(Refused { from, event }),
    };
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use SessionEvent as E;
    use SessionState as S;

    const EVENTS: [SessionEvent; 13] = [
        E::Consent,
        E::Capture,
        E::Retake,
        E::Queue,
        E::Requeue,
        E::Start,
        E::Finish,
        E::Fail,
        E::Cancel,
        E::Abandon,
        E::Expire,
        E::Purge,
        E::Delete,
    ];

    #[test]
    fn names_round_trip_and_match_serde() {
        for s in S::ALL {
            assert_eq!(S::parse(s.name()), Some(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        assert_eq!(S::parse("Done"), None);
        assert_eq!(S::parse(""), None);
    }

    #[test]
    fn a_session_lives_from_consent_to_done_and_is_deleted_by_its_guest() {
        let mut s = S::Consent;
        for (event, to) in [
            (E::Consent, S::Pose),
            (E::Capture, S::Review),
            (E::Retake, S::Pose),
            (E::Capture, S::Review),
            (E::Queue, S::Queued),
            (E::Start, S::Rendering),
            (E::Requeue, S::Queued),
            (E::Start, S::Rendering),
            (E::Finish, S::Done),
            (E::Delete, S::Deleted),
        ] {
            s = apply(s, event).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(s, to, "{event:?}");
        }
    }

    #[test]
    fn every_transition_is_the_table() {
        // (event, from) → to, for every pair: anything not listed is refused.
        let allowed: &[(SessionEvent, SessionState, SessionState)] = &[
            (E::Consent, S::Consent, S::Pose),
            (E::Consent, S::Pose, S::Pose),
            (E::Capture, S::Pose, S::Review),
            (E::Capture, S::Review, S::Review),
            (E::Retake, S::Pose, S::Pose),
            (E::Retake, S::Review, S::Pose),
            (E::Queue, S::Review, S::Queued),
            (E::Requeue, S::Queued, S::Queued),
            (E::Requeue, S::Rendering, S::Queued),
            (E::Start, S::Queued, S::Rendering),
            (E::Finish, S::Rendering, S::Done),
            (E::Fail, S::Queued, S::Failed),
            (E::Fail, S::Rendering, S::Failed),
            (E::Cancel, S::Consent, S::Cancelled),
            (E::Cancel, S::Pose, S::Cancelled),
            (E::Cancel, S::Review, S::Cancelled),
            (E::Cancel, S::Queued, S::Cancelled),
            (E::Cancel, S::Rendering, S::Cancelled),
            (E::Abandon, S::Consent, S::Cancelled),
            (E::Abandon, S::Pose, S::Cancelled),
            (E::Abandon, S::Review, S::Cancelled),
            (E::Expire, S::Consent, S::Expired),
            (E::Expire, S::Pose, S::Expired),
            (E::Expire, S::Review, S::Expired),
            (E::Expire, S::Done, S::Expired),
            (E::Expire, S::Failed, S::Expired),
            (E::Expire, S::Cancelled, S::Expired),
            (E::Delete, S::Done, S::Deleted),
        ];
        for event in EVENTS {
            for from in S::ALL {
                let expected = if event == E::Purge {
                    (!from.is_end()).then_some(S::Purged)
                } else {
                    allowed
                        .iter()
                        .find(|(e, f, _)| *e == event && *f == from)
                        .map(|(_, _, to)| *to)
                };
                match (apply(from, event), expected) {
                    (Ok(to), Some(want)) => assert_eq!(to, want, "{event:?} from {from}"),
                    (Err(r), None) => assert_eq!(r, Refused { from, event }),
                    (got, want) => panic!("{event:?} from {from}: {got:?}, expected {want:?}"),
                }
            }
        }
    }

    #[test]
    fn nothing_leaves_an_end_and_a_cancel_never_brings_back_a_clip() {
        for end in [S::Expired, S::Purged, S::Deleted] {
            for event in EVENTS {
                assert!(apply(end, event).is_err(), "{event:?} left {end}");
            }
        }
        // A capture, a finished render or a requeue arriving after a cancel is refused.
        for event in [E::Capture, E::Finish, E::Requeue, E::Start, E::Queue] {
            assert!(apply(S::Cancelled, event).is_err(), "{event:?}");
        }
    }

    #[test]
    fn the_openapi_document_lists_exactly_these_states() {
        let doc: serde_json::Value = serde_json::from_str(include_str!("../http/openapi.json"))
            .expect("openapi.json parses");
        let mut lists = Vec::new();
        fn walk(v: &serde_json::Value, out: &mut Vec<Vec<String>>) {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(serde_json::Value::Object(state)) = m.get("state")
                        && let Some(serde_json::Value::Array(e)) = state.get("enum")
                    {
                        out.push(
                            e.iter()
                                .filter_map(|x| x.as_str().map(String::from))
                                .collect(),
                        );
                    }
                    m.values().for_each(|x| walk(x, out));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
                _ => {}
            }
        }
        walk(&doc, &mut lists);
        assert!(!lists.is_empty(), "no session state enum in openapi.json");
        let mut ours: Vec<String> = S::ALL.iter().map(|s| s.name().to_string()).collect();
        ours.sort();
        for mut list in lists {
            list.sort();
            assert_eq!(list, ours);
        }
    }

    #[test]
    fn the_kiosk_handles_every_state() {
        // app.js declares what the kiosk does in each state: `const SESSION_STATES = {...}`.
        let js = include_str!("../../../kiosk-ui/app.js");
        let start = js
            .find("const SESSION_STATES = {")
            .expect("app.js declares SESSION_STATES");
        let body = &js[start..start + js[start..].find("};").expect("the declaration ends")];
        let mut keys: Vec<&str> = body
            .lines()
            .skip(1)
            .filter_map(|l| l.trim().split_once(':').map(|(k, _)| k.trim()))
            .collect();
        keys.sort_unstable();
        let mut ours: Vec<&str> = S::ALL.iter().map(|s| s.name()).collect();
        ours.sort_unstable();
        assert_eq!(keys, ours);
    }
}
