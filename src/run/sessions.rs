//! Session turns as a run performs them (the `SessionWork` of `schedule::sessions`): opening a
//! session calls the script for its turn count and first turn; each turn is built from the
//! conversation so far, sent with its session and turn headers, and its record (with `session`
//! and `turn`) goes to the sinks; its answer text (kept by the client for session turns only)
//! and the next turn's content, made at once while the user thinks, extend the conversation.
//! Script calls run on tokio's blocking pool, never on the thread that drives requests. A
//! script error stops the phase and is reported as the feed's error; a turn that fails ends
//! its session (the next turn would need its answer).

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::client::{Client, PhaseLabel, build_request};
use crate::plan::{Conversation, RequestShape, RequestSpec, SessionGenerator, SessionSpec};
use crate::record::{Outcome, RequestRecord};
use crate::schedule::{Dispatch, SessionWork, Turn};

use super::live::Live;

/// What a session's next turn needs: the conversation so far and the turn's own shape (its
/// `max_tokens`, body fields, headers and label; its content is in the conversation).
pub struct TurnState {
    conversation: Conversation,
    shape: RequestShape,
}

/// Performs the turns of one phase's sessions.
#[derive(Clone)]
pub struct SessionTurns {
    pub spec: Arc<RequestSpec>,
    pub model: Arc<str>,
    pub generator: Arc<dyn SessionGenerator>,
    pub client: Arc<Client>,
    pub label: Arc<PhaseLabel>,
    pub records: mpsc::Sender<RequestRecord>,
    pub abort: CancellationToken,
    pub live: Option<Arc<Live>>,
    /// The first script error, which stops the sessions.
    pub failure: Arc<Mutex<Option<String>>>,
}

impl SessionTurns {
    fn fail(&self, e: String) {
        self.failure
            .lock()
            .expect("session failure lock")
            .get_or_insert(e);
    }

    fn failed(&self) -> bool {
        self.failure.lock().expect("session failure lock").is_some()
    }

    /// Runs a script call off the request thread; its error is kept and gives `None`.
    async fn script<R: Send + 'static>(
        &self,
        call: impl FnOnce(&dyn SessionGenerator) -> Result<R, String> + Send + 'static,
    ) -> Option<R> {
        let generator = self.generator.clone();
        let made = tokio::task::spawn_blocking(move || call(generator.as_ref()))
            .await
            .unwrap_or_else(|_| Err("the session function panicked".into()));
        made.map_err(|e| self.fail(e)).ok()
    }
}

impl SessionWork for SessionTurns {
    type State = TurnState;

    async fn open(&self, session: u64) -> Option<(u32, TurnState)> {
        if self.failed() {
            return None;
        }
        let endpoint = self.spec.endpoint;
        self.script(move |g| {
            let turns = g.turns(session)?;
            let shape = g.turn(session, 0)?;
            Ok((
                turns,
                TurnState {
                    conversation: Conversation::open(shape.content.clone(), endpoint),
                    shape,
                },
            ))
        })
        .await
    }

    async fn turn(
        &self,
        dispatch: Dispatch,
        turn: Turn,
        state: TurnState,
    ) -> Option<(TurnState, u64)> {
        let TurnState {
            mut conversation,
            shape,
        } = state;
        let shape = RequestShape {
            content: conversation.content().clone(),
            ..shape
        };
        let request = match build_request(&self.spec, &self.model, &shape, dispatch.id) {
            Ok(r) => r.with_session_turn(turn.session, turn.turn),
            Err(e) => {
                self.fail(format!("session {} turn {}: {e}", turn.session, turn.turn));
                return None;
            }
        };
        if let Some(view) = &self.live {
            view.sent();
        }
        let (mut record, answer) = self
            .client
            .execute_keeping_answer(dispatch, &self.label, request, &self.abort)
            .await;
        record.session = Some(turn.session);
        record.turn = Some(turn.turn);
        let (ok, ended_us) = (record.outcome == Outcome::Ok, record.end_us);
        let _ = self.records.send(record).await;
        if !ok || turn.last || self.abort.is_cancelled() {
            return None;
        }
        let (session, k) = (turn.session, turn.turn + 1);
        let next = self.script(move |g| g.turn(session, k)).await?;
        if let Err(e) = conversation.follow(&answer.unwrap_or_default(), next.content.clone()) {
            self.fail(format!("session {session} turn {k}: {e}"));
            return None;
        }
        Some((
            TurnState {
                conversation,
                shape: next,
            },
            ended_us,
        ))
    }
}

/// Makes every turn of session `session` as a run would (with empty answers) and drops them:
/// the first error, naming the session and turn. For `llmbench check` and a run's first stage.
pub fn try_session(
    spec: &RequestSpec,
    model: &str,
    sessions: &SessionSpec,
    session: u64,
) -> Result<(), String> {
    let g = &sessions.generator;
    let at = |turn: u32, e: String| format!("session {session} turn {turn}: {e}");
    let turns = g.turns(session).map_err(|e| at(0, e))?;
    let first = g.turn(session, 0).map_err(|e| at(0, e))?;
    let mut conversation = Conversation::open(first.content.clone(), spec.endpoint);
    let mut shape = first;
    for turn in 0..turns {
        if turn > 0 {
            shape = g.turn(session, turn).map_err(|e| at(turn, e))?;
            conversation
                .follow("", shape.content.clone())
                .map_err(|e| at(turn, e))?;
        }
        let shape = RequestShape {
            content: conversation.content().clone(),
            ..shape.clone()
        };
        build_request(spec, model, &shape, 0).map_err(|e| at(turn, e))?;
    }
    Ok(())
}
