//! The node's role in the log: one line when it changes (leader, follower of whom, candidate),
//! instead of openraft's per-tick messages (a node that can reach nobody would otherwise
//! report an expired election timeout every few milliseconds).

use dbadger_core::raft_storage::RaftStateMachineStore;
use dbadger_core::storage::StateMachineStore;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::{Raft, ServerState};

use crate::node::Types;

/// What the log says about a node's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Role {
    state: ServerState,
    leader: Option<u64>,
    term: u64,
}

/// The line to log when the role goes from `before` to `now`, if it changed in a way an
/// operator cares about (a new term alone, while the role and leader stay, is not).
pub(crate) fn change(before: Option<Role>, now: Role) -> Option<String> {
    if before.is_some_and(|before| before.state == now.state && before.leader == now.leader) {
        return None;
    }
    Some(match (now.state, now.leader) {
        (ServerState::Leader, _) => format!("leading the cluster in term {}", now.term),
        (ServerState::Candidate, _) => {
            format!("no leader: standing for election in term {}", now.term)
        }
        (ServerState::Learner, Some(leader)) => {
            format!("learner, following leader {leader} (term {})", now.term)
        }
        (ServerState::Follower, Some(leader)) => {
            format!("following leader {leader} (term {})", now.term)
        }
        (ServerState::Learner | ServerState::Follower, None) => {
            format!("no leader known (term {})", now.term)
        }
        (ServerState::Shutdown, _) => "raft stopped".to_owned(),
    })
}

/// Logs each change of the node's role until its Raft core stops.
pub(crate) async fn log_role_changes<S: StateMachineStore>(
    raft: Raft<Types, RaftStateMachineStore<S>>,
) {
    // The server metrics change only with the role, leader, vote or membership (the full
    // metrics change on every step of the Raft core).
    let mut metrics = raft.server_metrics();
    drop(raft);
    let mut logged = None;
    loop {
        let now = {
            let metrics = metrics.borrow_watched();
            Role {
                state: metrics.state,
                leader: metrics.current_leader,
                term: metrics.vote.leader_id.term,
            }
        };
        if let Some(line) = change(logged, now) {
            tracing::info!(target: "dbadger::role", "{line}");
        }
        logged = Some(now);
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(state: ServerState, leader: Option<u64>, term: u64) -> Role {
        Role {
            state,
            leader,
            term,
        }
    }

    #[test]
    fn the_first_role_is_logged() {
        let line = change(None, role(ServerState::Follower, Some(3), 2));
        assert_eq!(line.as_deref(), Some("following leader 3 (term 2)"));
    }

    #[test]
    fn an_unchanged_role_is_not_logged_again() {
        let candidate = role(ServerState::Candidate, None, 5);
        assert_eq!(
            change(Some(candidate), role(ServerState::Candidate, None, 6)),
            None
        );
        let follower = role(ServerState::Follower, Some(1), 2);
        assert_eq!(change(Some(follower), follower), None);
    }

    #[test]
    fn a_new_leader_or_state_is_logged() {
        let follower = role(ServerState::Follower, Some(1), 2);
        assert!(change(Some(follower), role(ServerState::Follower, Some(2), 3)).is_some());
        assert_eq!(
            change(Some(follower), role(ServerState::Leader, Some(7), 3)).as_deref(),
            Some("leading the cluster in term 3")
        );
    }
}
