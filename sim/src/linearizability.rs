//! Linearizability checking for the history of one key.
//!
//! The simulator records, for every key, what each client invoked and what came back. This module
//! decides whether that history is linearizable with respect to a register whose state is
//! `Option<Vec<u8>>` (`None` = key absent), with writes (puts and deletes), reads and
//! compare-and-set.
//!
//! # The algorithm
//!
//! This is the Wing & Gong search with Lowe's memoisation, in the shape popularised by porcupine:
//!
//! 1. Every operation with a known return time becomes a *call* event at `invoke` and a *return*
//!    event at `at`. The events are sorted by time (at equal times calls come first, so operations
//!    touching at one instant count as concurrent) and threaded on a doubly linked list.
//! 2. The operations that may take effect next are exactly the calls that precede the first
//!    return event in the list: an operation whose return comes first must take effect before
//!    anything invoked after that return. The search tries them in list order; trying one means
//!    applying it to the register (a read must observe the current state, a compare-and-set must
//!    agree with the current state about success) and, if that works and the resulting
//!    configuration is new, *lifting* its call and return out of the list, pushing it on a stack
//!    and starting over from the head of the list. When the first return event is reached
//!    without any candidate working, the search *unlifts* the top of the stack (backtracks) and
//!    tries the next candidate after it.
//! 3. A configuration is the set of operations linearized so far plus the register state; the
//!    future of the search depends on nothing else, so a configuration that has been visited
//!    once never needs to be explored again (its first visit either succeeded, which ends the
//!    search, or failed). The set is a `Vec<u64>` bitset over the operations in invocation order,
//!    stored compactly (the leading run of fully linearized words is replaced by its length),
//!    and register values are interned, so the state is one word.
//! 4. The history is linearizable once every operation that returned has been lifted; the stack
//!    then holds a linearization. If the stack runs empty instead, it is not, and the deepest
//!    point the search ever reached is reported (see [`Violation`]).
//!
//! Every step (each candidate tried and each backtrack) counts against a budget, so a
//! pathological history makes [`check`] return [`Verdict::Inconclusive`] rather than hang.
//! Memory grows with the number of configurations visited, which the budget also bounds.
//!
//! # Operations with an unknown outcome
//!
//! Operations that failed in a way proving they did not happen are dropped, and so are reads
//! whose outcome is unknown (they observed nothing). A write or compare-and-set whose outcome is
//! unknown (a timeout, a lost connection) may have taken effect at any moment after its
//! invocation, or never. Porcupine models such an operation as one that returns at +infinity:
//! its return event never blocks anything, and since nothing is invoked after +infinity nothing
//! has to follow it either. Here the same idea is made explicit:
//!
//! * An unknown operation has no return event at all. It sits, ordered by invocation time, on a
//!   second linked list, and is a candidate whenever its invocation precedes the first return
//!   event of the main list (the same rule as for a call event at that position). It can always
//!   be applied: a write always succeeds, and an unknown compare-and-set does whatever the current
//!   state dictates.
//! * It is *optional*: the search succeeds as soon as every operation that returned has been
//!   lifted, whatever unknown operations remain. That is sound because a remaining unknown
//!   operation can be appended after everything else (it is always applicable, nothing must
//!   precede it that was not already placed, and nothing observes the register afterwards), and
//!   "took effect after everything else" is indistinguishable from "never took effect". It is
//!   also exactly what porcupine's +infinity trick amounts to: with returns at +infinity the
//!   search would only reach those return events after all finite ones, i.e. after every
//!   returned operation has been placed, and could then lift the remaining unknown operations
//!   one by one without any possibility of failure.
//!
//! Because unknown operations stay candidates until they are lifted, a few dozen of them could
//! multiply the configurations by the number of their subsets. The search therefore only looks
//! for *canonical* linearizations, in which every unknown operation changes the state and is
//! immediately followed by an operation that *needs* it: one that would be invalid without it, or
//! valid with a different result that does not commute with it (see `needs` in the source). Any
//! linearization can be rewritten into a canonical one: an unknown operation that changes
//! nothing, comes last, or is followed by an operation giving the same result without it can be
//! dropped; one followed by an operation that does not need it but commutes with it can be moved
//! after that operation (which, once the previous rewrites are done, has always returned). Every
//! rewrite removes an unknown operation or moves one later, so rewriting terminates. Also,
//! unknown operations with identical effects are interchangeable once both are invoked, so only
//! the earliest one not yet linearized is ever tried. Concretely:
//!
//! * Candidates that returned are tried before unknown ones, so configurations using fewer
//!   unknown operations tend to be explored first.
//! * An unknown operation is only lifted if it changes the state, no earlier operation with the
//!   same effect is still unused, and some current candidate needs it; after it, only operations
//!   that need it are tried.
//! * Configurations are only memoised after an operation that returned (never in the middle of
//!   "unknown operation, then what needs it"), and the memo is a *dominance* check: for a given
//!   set of returned operations and state it keeps the minimal sets of unknown operations used on
//!   the way there, and a new configuration is skipped if a visited one used a subset of its
//!   unknown operations (the visited one has all the same continuations available, and more).
//!   Without unknown operations this is the plain "visited before" test.
//!
//! Why the result is exact (when not inconclusive): an operation is only lifted when it is a
//! candidate and valid, so the stack is always a valid linearization of what it holds, and
//! success is only reported when it holds every returned operation. Conversely, suppose the
//! search ends without success although some visited configuration (the initial one or a
//! memoised one) has a canonical completion; take one whose shortest canonical completion is
//! shortest. That completion starts with zero or more unknown operations and then an operation
//! that returned; the search tried exactly that sequence (choosing the earliest of identical
//! unknown operations, which gives a completion as short), and the configuration after it was
//! either visited or dominated by a visited one, which has a shorter canonical completion: a
//! contradiction. So nothing visited, in particular the initial configuration, can be completed.
//!
//! Histories with many unknown operations whose values are also written and read by others
//! (few distinct values) remain the hard case: proving that such a history is *not*
//! linearizable may take tens of millions of steps, and a small budget then gives
//! [`Verdict::Inconclusive`]. Distinct values per write keep the search short.

use std::collections::HashMap;
use std::fmt;

/// One operation on one key, as a client saw it. Times are simulated nanoseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// Who issued it (used in messages only).
    pub client: u64,
    /// When the call started.
    pub invoke: u64,
    /// What came back.
    pub outcome: Outcome,
    /// What the operation was, with the result it observed.
    pub kind: OpKind,
}

/// How an [`Operation`] ended, as far as its client knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It returned at `at`, with the observed result inside the operation's [`OpKind`].
    ///
    /// It took effect at some instant in `[invoke, at]`. A return time before the invocation is
    /// treated as equal to it.
    Returned {
        /// When the result reached the client.
        at: u64,
    },
    /// It failed in a way that proves it did not happen; the checker drops it.
    Failed,
    /// Unknown: it may or may not have taken effect, at any time after `invoke` (there is no
    /// return time).
    Unknown,
}

/// What an [`Operation`] did to the key, with the result its client observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// Sets the value (`Some`) or deletes the key (`None`).
    Write {
        /// The new value, or `None` for a delete.
        value: Option<Vec<u8>>,
    },
    /// A linearizable read that observed `observed`.
    ///
    /// With an [`Outcome::Unknown`] outcome a read constrains nothing and is dropped.
    Read {
        /// The value the read returned (`None`: the key was absent).
        observed: Option<Vec<u8>>,
    },
    /// Compare-and-set: if the current state equals `expected`, the state becomes `new`.
    ///
    /// `succeeded` is what the client saw. It is ignored when the outcome is
    /// [`Outcome::Unknown`]: the operation then either happened, with whatever result the state
    /// at that moment implies, or did not happen at all.
    CompareAndSet {
        /// The state required for the swap (`None`: the key must be absent).
        expected: Option<Vec<u8>>,
        /// The state after a successful swap (`None`: the key is deleted).
        new: Option<Vec<u8>>,
        /// Whether the client was told that the swap happened.
        succeeded: bool,
    },
}

/// Why a history is not linearizable: the deepest point the search reached.
///
/// Operations are given with their index in the history passed to [`check`]. The
/// [`Display`](fmt::Display) implementation turns this into a readable, multi-line explanation
/// that starts in lower case ("at most 3 of the 10 operations that returned can be
/// linearized"), to follow something like "key k is not linearizable: ". It shows the last 20
/// operations of the prefix, each with the value after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The state of the key before the history.
    pub initial: Option<Vec<u8>>,
    /// The longest linearizable prefix found (the one placing the most operations that
    /// returned), in linearization order. It may include operations with an unknown outcome,
    /// assumed to take effect at that point.
    pub prefix: Vec<(usize, Operation)>,
    /// The state of the key after `prefix`.
    pub state: Option<Vec<u8>>,
    /// The operations that returned, were not in `prefix` and could, by real-time order, have
    /// come next; none of them is consistent with `state`.
    pub stuck: Vec<(usize, Operation)>,
    /// The operations with an unknown outcome that could also have come next after `prefix`;
    /// applying them did not lead anywhere either.
    pub pending_unknown: Vec<(usize, Operation)>,
    /// How many operations of the history returned (all of which a linearization must place).
    pub returned: usize,
}

/// The result of [`check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Some linearization explains every operation that returned.
    Linearizable,
    /// No linearization exists.
    Violation(Violation),
    /// The search budget ran out before an answer was found.
    Inconclusive {
        /// The number of search steps taken (equal to the budget).
        explored: u64,
    },
}

/// Checks whether `history`, the operations on one key that started in state `initial`, is
/// linearizable, taking at most `budget` search steps.
///
/// The order of `history` does not matter. See the [module documentation](self) for the
/// semantics of each operation and outcome, and for the algorithm.
pub fn check(initial: Option<Vec<u8>>, history: &[Operation], budget: u64) -> Verdict {
    let problem = Problem::new(initial.as_deref(), history);
    match problem.search(budget) {
        Search::Linearizable => Verdict::Linearizable,
        Search::Inconclusive { explored } => Verdict::Inconclusive { explored },
        Search::Violation(deepest) => {
            let ops = |indices: &[usize]| -> Vec<(usize, Operation)> {
                indices
                    .iter()
                    .map(|&index| (index, history[index].clone()))
                    .collect()
            };
            Verdict::Violation(Violation {
                prefix: ops(&deepest.prefix),
                state: problem.values[deepest.state].map(<[u8]>::to_vec),
                stuck: ops(&deepest.stuck),
                pending_unknown: ops(&deepest.pending_unknown),
                returned: problem.returned.len(),
                initial,
            })
        }
    }
}

/// The effect of one operation on the interned register state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Effect {
    /// State := value.
    Write(usize),
    /// Valid only if state == observed.
    Read(usize),
    /// A compare-and-set whose result the client saw.
    Cas {
        expected: usize,
        new: usize,
        succeeded: bool,
    },
    /// A compare-and-set with an unknown outcome: swaps if it can.
    MaybeCas { expected: usize, new: usize },
}

impl Effect {
    /// The state after applying the operation to `state`, or `None` if the operation's observed
    /// result is inconsistent with `state`.
    fn apply(self, state: usize) -> Option<usize> {
        match self {
            Self::Write(value) => Some(value),
            Self::Read(observed) => (state == observed).then_some(state),
            Self::Cas {
                expected,
                new,
                succeeded: true,
            } => (state == expected).then_some(new),
            Self::Cas {
                expected,
                succeeded: false,
                ..
            } => (state != expected).then_some(state),
            Self::MaybeCas { expected, new } => Some(if state == expected { new } else { state }),
        }
    }
}

/// An operation that returned: it must be linearized within `[invoke, at]`.
#[derive(Clone, Copy, Debug)]
struct Returned {
    index: usize,
    invoke: u64,
    at: u64,
    effect: Effect,
}

/// An operation with an unknown outcome: it may be linearized at any time after `invoke`.
#[derive(Clone, Copy, Debug)]
struct Maybe {
    index: usize,
    invoke: u64,
    effect: Effect,
    /// The previous operation in [`Problem::maybe`] with the same effect, if any.
    twin_before: Option<usize>,
}

/// A circular doubly linked list over nodes `1..=len`, with node 0 as the sentinel.
///
/// Unlinking leaves a node's own links intact, so nodes can be relinked in the reverse order of
/// their unlinking ("dancing links").
#[derive(Debug)]
struct Links {
    prev: Vec<usize>,
    next: Vec<usize>,
}

impl Links {
    fn new(len: usize) -> Self {
        let size = len + 1;
        Self {
            prev: (0..size).map(|node| (node + size - 1) % size).collect(),
            next: (0..size).map(|node| (node + 1) % size).collect(),
        }
    }

    fn first(&self) -> usize {
        self.next[0]
    }

    fn unlink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = next;
        self.prev[next] = prev;
    }

    fn relink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = node;
        self.prev[next] = node;
    }
}

/// A node of the main event list (node 0 is the sentinel and has a placeholder entry).
#[derive(Clone, Copy, Debug)]
struct Event {
    /// The operation, an index into [`Problem::returned`].
    op: usize,
    time: u64,
    /// For a call event, the node of its return event; `None` for a return event.
    return_node: Option<usize>,
}

/// The history, preprocessed for the search.
#[derive(Debug)]
struct Problem<'a> {
    /// Interned register values; index 0 is the initial state.
    values: Vec<Option<&'a [u8]>>,
    /// The operations that returned, in invocation order (the bitset order).
    returned: Vec<Returned>,
    /// The operations with an unknown outcome, in invocation order (the side-list order).
    maybe: Vec<Maybe>,
    /// For each interned value, the unknown compare-and-set operations expecting it (indices
    /// into `maybe`, in invocation order).
    cas_by_expected: Vec<Vec<usize>>,
    /// The main list's nodes: `events[0]` is the sentinel, then all events in time order.
    events: Vec<Event>,
}

/// Maps register values to small integers.
#[derive(Debug, Default)]
struct Interner<'a> {
    ids: HashMap<Option<&'a [u8]>, usize>,
    values: Vec<Option<&'a [u8]>>,
}

impl<'a> Interner<'a> {
    fn intern(&mut self, value: Option<&'a [u8]>) -> usize {
        *self.ids.entry(value).or_insert_with(|| {
            self.values.push(value);
            self.values.len() - 1
        })
    }
}

impl<'a> Problem<'a> {
    fn new(initial: Option<&'a [u8]>, history: &'a [Operation]) -> Self {
        let mut interner = Interner::default();
        interner.intern(initial);
        let mut returned = Vec::new();
        let mut maybe = Vec::new();
        for (index, op) in history.iter().enumerate() {
            let known = match op.outcome {
                Outcome::Returned { at } => Some(at.max(op.invoke)),
                Outcome::Unknown => None,
                Outcome::Failed => continue,
            };
            let effect = match &op.kind {
                OpKind::Write { value } => Effect::Write(interner.intern(value.as_deref())),
                OpKind::Read { observed } => {
                    if known.is_none() {
                        continue;
                    }
                    Effect::Read(interner.intern(observed.as_deref()))
                }
                OpKind::CompareAndSet {
                    expected,
                    new,
                    succeeded,
                } => {
                    let expected = interner.intern(expected.as_deref());
                    let new = interner.intern(new.as_deref());
                    match known {
                        Some(_) => Effect::Cas {
                            expected,
                            new,
                            succeeded: *succeeded,
                        },
                        None => Effect::MaybeCas { expected, new },
                    }
                }
            };
            let invoke = op.invoke;
            match known {
                Some(at) => returned.push(Returned {
                    index,
                    invoke,
                    at,
                    effect,
                }),
                None => maybe.push(Maybe {
                    index,
                    invoke,
                    effect,
                    twin_before: None,
                }),
            }
        }
        returned.sort_by_key(|op| (op.invoke, op.at, op.index));
        maybe.sort_by_key(|op| (op.invoke, op.index));
        let mut last_with_effect = HashMap::new();
        let mut cas_by_expected = vec![Vec::new(); interner.values.len()];
        for (position, op) in maybe.iter_mut().enumerate() {
            op.twin_before = last_with_effect.insert(op.effect, position);
            if let Effect::MaybeCas { expected, .. } = op.effect {
                cas_by_expected[expected].push(position);
            }
        }

        // (time, is a return, operation): calls before returns at equal times.
        let mut order: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * returned.len());
        for (op, r) in returned.iter().enumerate() {
            order.push((r.invoke, false, op));
            order.push((r.at, true, op));
        }
        order.sort_unstable();
        let mut return_node = vec![0; returned.len()];
        for (position, &(_, is_return, op)) in order.iter().enumerate() {
            if is_return {
                return_node[op] = position + 1;
            }
        }
        let sentinel = Event {
            op: 0,
            time: u64::MAX,
            return_node: None,
        };
        let events = std::iter::once(sentinel)
            .chain(order.iter().map(|&(time, is_return, op)| Event {
                op,
                time,
                return_node: (!is_return).then_some(return_node[op]),
            }))
            .collect();

        Problem {
            values: interner.values,
            returned,
            maybe,
            cas_by_expected,
            events,
        }
    }

    /// Runs the search for at most `budget` steps.
    fn search(&self, budget: u64) -> Search {
        let mut s = Searcher::new(self);
        let mut steps = 0;
        let mut cursor = Cursor::Main(s.main.first());
        loop {
            if s.placed == self.returned.len() {
                return Search::Linearizable;
            }
            if steps >= budget {
                return Search::Inconclusive { explored: steps };
            }
            steps += 1;
            cursor = match cursor {
                Cursor::Main(node) => match self.events[node].return_node {
                    // A call event before the first return: try to linearize it next.
                    Some(return_node) if node != 0 => {
                        if s.lift_returned(node, return_node) {
                            Cursor::Main(s.main.first())
                        } else {
                            Cursor::Main(s.main.next[node])
                        }
                    }
                    // The first return event: all returned candidates have been tried; now try
                    // the unknown operations invoked no later than this return (unless none
                    // could follow the unknown operation on top of the stack).
                    _ if s.maybe_cas_can_follow(self.events[node].time) => Cursor::Side {
                        node: s.side.first(),
                        deadline: self.events[node].time,
                    },
                    _ => match s.backtrack() {
                        Some(cursor) => cursor,
                        None => return Search::Violation(s.deepest),
                    },
                },
                Cursor::Side { node, deadline } => {
                    if node != 0 && self.maybe[node - 1].invoke <= deadline {
                        if s.lift_maybe(node, deadline) {
                            Cursor::Main(s.main.first())
                        } else {
                            Cursor::Side {
                                node: s.side.next[node],
                                deadline,
                            }
                        }
                    } else {
                        match s.backtrack() {
                            Some(cursor) => cursor,
                            None => return Search::Violation(s.deepest),
                        }
                    }
                }
            };
        }
    }
}

/// The outcome of [`Problem::search`].
#[derive(Debug)]
enum Search {
    Linearizable,
    Violation(Deepest),
    Inconclusive { explored: u64 },
}

/// Where the search is looking for the next operation to linearize.
#[derive(Clone, Copy, Debug)]
enum Cursor {
    /// At this node of the main list (calls of returned operations, then the first return).
    Main(usize),
    /// At this node of the side list (unknown operations), considering those invoked no later
    /// than `deadline`, the time of the first return event in the main list.
    Side { node: usize, deadline: u64 },
}

/// One linearized operation on the search stack, with what is needed to undo it.
#[derive(Clone, Copy, Debug)]
struct Frame {
    lifted: Lifted,
    /// [`Searcher::state`] before the operation.
    prev_state: usize,
}

/// Which operation a [`Frame`] linearized.
#[derive(Clone, Copy, Debug)]
enum Lifted {
    /// A returned operation, by its call and return nodes in the main list.
    Returned { call: usize, return_node: usize },
    /// An unknown operation, by its side-list node, and the deadline it was tried under.
    Maybe { node: usize, deadline: u64 },
}

/// The configuration that placed the most returned operations, for the report.
#[derive(Debug, Default)]
struct Deepest {
    placed: usize,
    prefix: Vec<usize>,
    state: usize,
    stuck: Vec<usize>,
    pending_unknown: Vec<usize>,
}

/// The mutable state of a search.
#[derive(Debug)]
struct Searcher<'p, 'a> {
    problem: &'p Problem<'a>,
    main: Links,
    side: Links,
    /// The register state after the operations on the stack.
    state: usize,
    /// Bitset over [`Problem::returned`]: the returned operations linearized so far.
    returned_set: Vec<u64>,
    /// Bitset over [`Problem::maybe`]: the unknown operations linearized so far (at least one
    /// word, so that every visited configuration stores something).
    maybe_set: Vec<u64>,
    /// How many returned operations are linearized.
    placed: usize,
    stack: Vec<Frame>,
    /// Compact (returned set, state) key => the minimal unknown-operation sets it was visited
    /// with, concatenated (each `maybe_set.len()` words).
    memo: HashMap<Vec<u64>, Vec<u64>>,
    /// Scratch space for building memo keys.
    key: Vec<u64>,
    deepest: Deepest,
}

impl<'p, 'a> Searcher<'p, 'a> {
    fn new(problem: &'p Problem<'a>) -> Self {
        let mut searcher = Searcher {
            problem,
            main: Links::new(problem.events.len() - 1),
            side: Links::new(problem.maybe.len()),
            state: 0,
            returned_set: vec![0; problem.returned.len().div_ceil(64)],
            maybe_set: vec![0; problem.maybe.len().div_ceil(64).max(1)],
            placed: 0,
            stack: Vec::new(),
            memo: HashMap::new(),
            key: Vec::new(),
            deepest: Deepest::default(),
        };
        searcher.record_deepest();
        searcher
    }

    /// Tries to linearize the returned operation whose call event is `call`.
    fn lift_returned(&mut self, call: usize, return_node: usize) -> bool {
        let op = self.problem.events[call].op;
        let effect = self.problem.returned[op].effect;
        let Some(next_state) = effect.apply(self.state) else {
            return false;
        };
        if !self.needed_by(effect) {
            return false;
        }
        set_bit(&mut self.returned_set, op);
        if !self.visit(next_state) {
            clear_bit(&mut self.returned_set, op);
            return false;
        }
        self.push(Lifted::Returned { call, return_node }, next_state);
        self.main.unlink(call);
        self.main.unlink(return_node);
        self.placed += 1;
        if self.placed > self.deepest.placed {
            self.record_deepest();
        }
        true
    }

    /// Tries to linearize the unknown operation at side-list `node`.
    fn lift_maybe(&mut self, node: usize, deadline: u64) -> bool {
        let op = node - 1;
        let maybe = self.problem.maybe[op];
        // Operations with the same effect are interchangeable once invoked: use them in order.
        if let Some(twin) = maybe.twin_before
            && !test_bit(&self.maybe_set, twin)
        {
            return false;
        }
        let next_state = match maybe.effect.apply(self.state) {
            Some(next_state) if next_state != self.state => next_state,
            // Unknown operations are optional, so placing one that changes nothing is pointless.
            _ => return false,
        };
        if !self.needed_by(maybe.effect) || !self.may_be_needed(maybe.effect, next_state, deadline)
        {
            return false;
        }
        // The configuration is not memoised: it is only an intermediate step towards the
        // operation that needs this one.
        set_bit(&mut self.maybe_set, op);
        self.push(Lifted::Maybe { node, deadline }, next_state);
        self.side.unlink(node);
        true
    }

    /// If the top of the stack is an unknown operation, whether the operation with `effect`
    /// needs it, and may therefore come next (see [`needs`]); true otherwise.
    fn needed_by(&self, effect: Effect) -> bool {
        match self.stack.last() {
            Some(&Frame {
                lifted: Lifted::Maybe { node, .. },
                prev_state,
            }) => needs(
                self.problem.maybe[node - 1].effect,
                prev_state,
                self.state,
                effect,
            ),
            _ => true,
        }
    }

    /// Whether anything could come next that needs the unknown operation with `effect`, taking
    /// the current state to `next_state`: a returned operation among the current candidates,
    /// or an unknown compare-and-set invoked by `deadline` that expects `next_state`.
    fn may_be_needed(&self, effect: Effect, next_state: usize, deadline: u64) -> bool {
        if self.open_cas(next_state, self.state, deadline) {
            return true;
        }
        let mut node = self.main.first();
        while node != 0 && self.problem.events[node].return_node.is_some() {
            let candidate = self.problem.returned[self.problem.events[node].op].effect;
            if needs(effect, self.state, next_state, candidate) {
                return true;
            }
            node = self.main.next[node];
        }
        false
    }

    /// Whether an unknown operation invoked by `deadline` could come next: always, unless the
    /// top of the stack is an unknown operation, which only an unknown compare-and-set
    /// expecting its result can need.
    fn maybe_cas_can_follow(&self, deadline: u64) -> bool {
        match self.stack.last() {
            Some(&Frame {
                lifted: Lifted::Maybe { .. },
                prev_state,
            }) => self.open_cas(self.state, prev_state, deadline),
            _ => true,
        }
    }

    /// Whether some unknown compare-and-set invoked by `deadline` and not linearized yet swaps
    /// `expected` for something other than `not_new`.
    fn open_cas(&self, expected: usize, not_new: usize, deadline: u64) -> bool {
        self.problem.cas_by_expected[expected]
            .iter()
            .take_while(|&&op| self.problem.maybe[op].invoke <= deadline)
            .any(|&op| {
                !test_bit(&self.maybe_set, op)
                    && matches!(self.problem.maybe[op].effect,
                        Effect::MaybeCas { new, .. } if new != not_new)
            })
    }

    fn push(&mut self, lifted: Lifted, next_state: usize) {
        self.stack.push(Frame {
            lifted,
            prev_state: self.state,
        });
        self.state = next_state;
    }

    /// Undoes the top of the stack and returns where to continue, or `None` if the stack is
    /// empty (every possibility has been explored).
    fn backtrack(&mut self) -> Option<Cursor> {
        let frame = self.stack.pop()?;
        self.state = frame.prev_state;
        Some(match frame.lifted {
            Lifted::Returned { call, return_node } => {
                self.main.relink(return_node);
                self.main.relink(call);
                clear_bit(&mut self.returned_set, self.problem.events[call].op);
                self.placed -= 1;
                Cursor::Main(self.main.next[call])
            }
            Lifted::Maybe { node, deadline } => {
                self.side.relink(node);
                clear_bit(&mut self.maybe_set, node - 1);
                Cursor::Side {
                    node: self.side.next[node],
                    deadline,
                }
            }
        })
    }

    /// Records a visit to the configuration (current sets, `state`); returns false if it, or a
    /// configuration dominating it, has been visited before.
    fn visit(&mut self, state: usize) -> bool {
        // Key: index of the first word of the returned set that is not full, the state, then
        // the words from there to the last non-zero one. This determines the set exactly.
        let words = &self.returned_set;
        let start = words
            .iter()
            .position(|&word| word != u64::MAX)
            .unwrap_or(words.len());
        let end = words
            .iter()
            .rposition(|&word| word != 0)
            .map_or(start, |last| (last + 1).max(start));
        self.key.clear();
        self.key.push(start as u64);
        self.key.push(state as u64);
        self.key.extend_from_slice(&words[start..end]);

        let used = &self.maybe_set;
        let width = used.len();
        let Some(seen) = self.memo.get_mut(self.key.as_slice()) else {
            self.memo.insert(self.key.clone(), used.clone());
            return true;
        };
        if seen
            .chunks_exact(width)
            .any(|earlier| is_subset(earlier, used))
        {
            return false;
        }
        // Keep the stored sets minimal: forget those that `used` now dominates.
        let mut kept = 0;
        for chunk in 0..seen.len() / width {
            let from = chunk * width;
            if !is_subset(used, &seen[from..from + width]) {
                seen.copy_within(from..from + width, kept * width);
                kept += 1;
            }
        }
        seen.truncate(kept * width);
        seen.extend_from_slice(used);
        true
    }

    /// Saves the current configuration as the deepest one.
    fn record_deepest(&mut self) {
        let problem = self.problem;
        let prefix = self
            .stack
            .iter()
            .map(|frame| match frame.lifted {
                Lifted::Returned { call, .. } => problem.returned[problem.events[call].op].index,
                Lifted::Maybe { node, .. } => problem.maybe[node - 1].index,
            })
            .collect();
        let mut stuck = Vec::new();
        let mut node = self.main.first();
        while node != 0 && problem.events[node].return_node.is_some() {
            stuck.push(problem.returned[problem.events[node].op].index);
            node = self.main.next[node];
        }
        let deadline = problem.events[node].time;
        let mut pending_unknown = Vec::new();
        let mut node = self.side.first();
        while node != 0 && problem.maybe[node - 1].invoke <= deadline {
            pending_unknown.push(problem.maybe[node - 1].index);
            node = self.side.next[node];
        }
        self.deepest = Deepest {
            placed: self.placed,
            prefix,
            state: self.state,
            stuck,
            pending_unknown,
        };
    }
}

/// Whether an operation with effect `next` needs the unknown operation with effect `unknown`
/// that took the state from `before` to `after`, to be valid right after it.
///
/// It does not if it is invalid after it, or valid without it with the same result (then the
/// unknown operation can be dropped), or valid without it and commuting with it (then the
/// unknown operation can be moved after it). A linearization in which some unknown operation is
/// not immediately followed by an operation that needs it can therefore be rewritten into one
/// with fewer unknown operations or with one moved later, which is why the search only explores
/// linearizations in which every unknown operation is needed by the next one.
fn needs(unknown: Effect, before: usize, after: usize, next: Effect) -> bool {
    let Some(with) = next.apply(after) else {
        return false;
    };
    match next.apply(before) {
        None => true,
        Some(without) => without != with && unknown.apply(without) != Some(with),
    }
}

fn set_bit(bits: &mut [u64], bit: usize) {
    bits[bit / 64] |= 1 << (bit % 64);
}

fn test_bit(bits: &[u64], bit: usize) -> bool {
    bits[bit / 64] & (1 << (bit % 64)) != 0
}

fn clear_bit(bits: &mut [u64], bit: usize) {
    bits[bit / 64] &= !(1 << (bit % 64));
}

/// Whether every bit of `small` is set in `big`.
fn is_subset(small: &[u64], big: &[u64]) -> bool {
    small.iter().zip(big).all(|(s, b)| s & !b == 0)
}

/// The state after `op` takes effect in `state` (assuming it is consistent with it).
fn after<'v>(op: &'v Operation, state: Option<&'v [u8]>) -> Option<&'v [u8]> {
    match &op.kind {
        OpKind::Write { value } => value.as_deref(),
        OpKind::Read { .. } => state,
        OpKind::CompareAndSet { expected, new, .. } => {
            if state == expected.as_deref() {
                new.as_deref()
            } else {
                state
            }
        }
    }
}

/// Formats a register value: quoted text if printable ASCII, hex otherwise, `<absent>` for
/// `None`; long values are shortened.
struct ShowValue<'v>(Option<&'v [u8]>);

impl fmt::Display for ShowValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 40;
        let Some(bytes) = self.0 else {
            return f.write_str("<absent>");
        };
        let shown = &bytes[..bytes.len().min(MAX)];
        if shown.iter().all(|b| (b' '..=b'~').contains(b)) {
            f.write_str("\"")?;
            for &b in shown {
                if b == b'"' || b == b'\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{}", char::from(b))?;
            }
            f.write_str("\"")?;
        } else {
            f.write_str("0x")?;
            for b in shown {
                write!(f, "{b:02x}")?;
            }
        }
        if bytes.len() > MAX {
            write!(f, "... ({} bytes)", bytes.len())?;
        }
        Ok(())
    }
}

/// Formats an operation with its history index, e.g.
/// `#4 client 2: read "a" [invoked 10, returned 30]`.
struct ShowOp<'o>(usize, &'o Operation);

impl fmt::Display for ShowOp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ShowOp(index, op) = *self;
        write!(f, "#{index} client {}: ", op.client)?;
        let unknown = matches!(op.outcome, Outcome::Unknown);
        match &op.kind {
            OpKind::Write { value: None } => f.write_str("delete")?,
            OpKind::Write { value } => write!(f, "write {}", ShowValue(value.as_deref()))?,
            OpKind::Read { observed } => write!(f, "read {}", ShowValue(observed.as_deref()))?,
            OpKind::CompareAndSet {
                expected,
                new,
                succeeded,
            } => {
                let result = match (unknown, succeeded) {
                    (true, _) => "",
                    (false, true) => " succeeded",
                    (false, false) => " failed",
                };
                write!(
                    f,
                    "compare-and-set {} -> {}{result}",
                    ShowValue(expected.as_deref()),
                    ShowValue(new.as_deref()),
                )?;
            }
        }
        match op.outcome {
            Outcome::Returned { at } => write!(f, " [invoked {}, returned {at}]", op.invoke),
            Outcome::Unknown => write!(f, " [invoked {}, outcome unknown]", op.invoke),
            Outcome::Failed => write!(f, " [invoked {}, failed]", op.invoke),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 20;
        let state = self.state.as_deref();
        let placed = self
            .prefix
            .iter()
            .filter(|(_, op)| matches!(op.outcome, Outcome::Returned { .. }))
            .count();
        writeln!(
            f,
            "at most {placed} of the {} operations that returned can be \
             linearized",
            self.returned,
        )?;
        writeln!(
            f,
            "after the longest linearizable prefix found, the value is {}, and no operation \
             that may come next is consistent with it:",
            ShowValue(state),
        )?;
        for (index, op) in &self.stuck {
            write!(f, "  {}: ", ShowOp(*index, op))?;
            match &op.kind {
                OpKind::Read { .. }
                | OpKind::CompareAndSet {
                    succeeded: true, ..
                } => writeln!(f, "but the value is {}", ShowValue(state))?,
                OpKind::CompareAndSet {
                    succeeded: false, ..
                } => writeln!(f, "but the value is the expected one")?,
                // Cannot happen (a write is always valid), but say something sensible anyway.
                OpKind::Write { .. } => writeln!(f, "valid, but leads nowhere")?,
            }
        }
        if !self.pending_unknown.is_empty() {
            writeln!(
                f,
                "operations with an unknown outcome that could take effect there too, to no \
                 avail:"
            )?;
            for (index, op) in &self.pending_unknown {
                writeln!(f, "  {}", ShowOp(*index, op))?;
            }
        }
        let skipped = self.prefix.len().saturating_sub(SHOWN);
        write!(
            f,
            "longest linearizable prefix ({} operations), from the initial value {}",
            self.prefix.len(),
            ShowValue(self.initial.as_deref()),
        )?;
        if skipped > 0 {
            write!(f, ", showing the last {SHOWN}")?;
        }
        f.write_str(":")?;
        let mut value = self.initial.as_deref();
        for (position, (index, op)) in self.prefix.iter().enumerate() {
            value = after(op, value);
            if position >= skipped {
                write!(f, "\n  {} => {}", ShowOp(*index, op), ShowValue(value))?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Violation {}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const BUDGET: u64 = 10_000_000;

    fn v(s: &str) -> Option<Vec<u8>> {
        Some(s.as_bytes().to_vec())
    }

    fn op(client: u64, invoke: u64, at: u64, kind: OpKind) -> Operation {
        Operation {
            client,
            invoke,
            outcome: Outcome::Returned { at },
            kind,
        }
    }

    fn write(client: u64, invoke: u64, at: u64, value: Option<Vec<u8>>) -> Operation {
        op(client, invoke, at, OpKind::Write { value })
    }

    fn read(client: u64, invoke: u64, at: u64, observed: Option<Vec<u8>>) -> Operation {
        op(client, invoke, at, OpKind::Read { observed })
    }

    fn cas(
        client: u64,
        invoke: u64,
        at: u64,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
        succeeded: bool,
    ) -> Operation {
        op(
            client,
            invoke,
            at,
            OpKind::CompareAndSet {
                expected,
                new,
                succeeded,
            },
        )
    }

    fn unknown(mut op: Operation) -> Operation {
        op.outcome = Outcome::Unknown;
        op
    }

    fn failed(mut op: Operation) -> Operation {
        op.outcome = Outcome::Failed;
        op
    }

    fn violation(initial: Option<Vec<u8>>, history: &[Operation]) -> Violation {
        match check(initial, history, BUDGET) {
            Verdict::Violation(violation) => violation,
            other => panic!("expected a violation, got {other:?}"),
        }
    }

    fn assert_linearizable(initial: Option<Vec<u8>>, history: &[Operation]) {
        let verdict = check(initial, history, BUDGET);
        assert_eq!(verdict, Verdict::Linearizable, "{verdict:?}");
    }

    #[test]
    fn empty_history_is_linearizable_even_without_budget() {
        assert_eq!(check(None, &[], 0), Verdict::Linearizable);
        // Only optional or dropped operations: nothing has to be placed.
        let history = [
            unknown(write(1, 0, 0, v("a"))),
            failed(read(2, 0, 5, v("zzz"))),
        ];
        assert_eq!(check(None, &history, 0), Verdict::Linearizable);
    }

    #[test]
    fn sequential_valid() {
        let history = [
            read(1, 0, 1, None),
            write(1, 2, 3, v("a")),
            read(1, 4, 5, v("a")),
            cas(1, 6, 7, v("a"), v("b"), true),
            read(1, 8, 9, v("b")),
            write(1, 10, 11, None),
            read(1, 12, 13, None),
        ];
        assert_linearizable(None, &history);
    }

    #[test]
    fn sequential_invalid_reports_the_stuck_read() {
        let history = [
            write(1, 0, 1, v("a")),
            write(1, 2, 3, v("b")),
            read(1, 4, 5, v("a")),
            write(1, 6, 7, v("c")),
        ];
        let violation = violation(None, &history);
        assert_eq!(violation.prefix.len(), 2);
        assert_eq!(violation.prefix[1].0, 1);
        assert_eq!(violation.state, v("b"));
        assert_eq!(violation.stuck, vec![(2, history[2].clone())]);
        assert_eq!(violation.returned, 4);
        let message = violation.to_string();
        assert!(message.contains("#2 client 1: read \"a\""), "{message}");
        assert!(message.contains("but the value is \"b\""), "{message}");
    }

    #[test]
    fn initial_state_is_respected() {
        assert_linearizable(v("x"), &[read(1, 0, 1, v("x"))]);
        violation(None, &[read(1, 0, 1, v("x"))]);
    }

    #[test]
    fn concurrent_write_and_read_either_order() {
        // The read overlaps the write, so it may see the old or the new value.
        for observed in [None, v("a")] {
            let history = [write(1, 0, 10, v("a")), read(2, 5, 15, observed)];
            assert_linearizable(None, &history);
        }
        // But not a third value.
        violation(None, &[write(1, 0, 10, v("a")), read(2, 5, 15, v("b"))]);
    }

    #[test]
    fn concurrent_reads_must_agree_on_one_order() {
        // Two overlapping writes; two later reads (both after both writes) must agree.
        let history = [
            write(1, 0, 10, v("a")),
            write(2, 0, 10, v("b")),
            read(3, 20, 30, v("a")),
            read(4, 40, 50, v("b")),
        ];
        violation(None, &history);
        // While reads overlapping the writes may see them in the order they happen.
        let history = [
            write(1, 0, 10, v("a")),
            write(2, 0, 10, v("b")),
            read(3, 1, 9, v("a")),
            read(4, 2, 30, v("b")),
        ];
        assert_linearizable(None, &history);
    }

    #[test]
    fn stale_read_after_completed_write() {
        let history = [
            write(1, 0, 10, v("a")),
            write(1, 20, 30, v("b")),
            read(2, 40, 50, v("a")),
        ];
        let violation = violation(None, &history);
        assert_eq!(violation.state, v("b"));
        assert_eq!(violation.stuck.len(), 1);
        assert_eq!(violation.stuck[0].0, 2);
    }

    #[test]
    fn read_of_a_value_never_written() {
        let history = [
            write(1, 0, 10, v("a")),
            read(2, 5, 15, v("ghost")),
            write(3, 12, 20, v("b")),
        ];
        let violation = violation(None, &history);
        assert!(violation.stuck.iter().any(|(index, _)| *index == 1));
        assert!(violation.to_string().contains("\"ghost\""));
    }

    #[test]
    fn touching_intervals_count_as_concurrent() {
        // The write returns at the very instant the read is invoked: either order is allowed.
        let history = [write(1, 0, 10, v("a")), read(2, 10, 20, None)];
        assert_linearizable(None, &history);
        // One nanosecond later, the write must come first.
        let history = [write(1, 0, 10, v("a")), read(2, 11, 20, None)];
        violation(None, &history);
    }

    #[test]
    fn real_time_order_across_clients() {
        // Client 2's read starts after client 1's write returned, so it must see it.
        let history = [
            write(1, 0, 10, v("a")),
            read(2, 15, 25, None),
            read(3, 0, 100, None),
        ];
        let violation = violation(None, &history);
        assert_eq!(violation.stuck, vec![(1, history[1].clone())]);
        // Without the real-time constraint (the read overlaps the write) it would be fine.
        let history = [write(1, 0, 10, v("a")), read(2, 5, 25, None)];
        assert_linearizable(None, &history);
    }

    #[test]
    fn failed_operations_are_dropped() {
        let history = [
            failed(write(1, 0, 10, v("a"))),
            failed(cas(1, 0, 10, None, v("b"), true)),
            read(2, 20, 30, None),
        ];
        assert_linearizable(None, &history);
        // A failed read constrains nothing either.
        assert_linearizable(None, &[failed(read(1, 0, 1, v("nope")))]);
    }

    #[test]
    fn unknown_write_that_must_have_happened() {
        let history = [
            write(1, 0, 10, v("a")),
            unknown(write(2, 20, 0, v("b"))),
            read(3, 1_000, 1_010, v("b")),
        ];
        assert_linearizable(None, &history);
    }

    #[test]
    fn unknown_write_may_take_effect_long_after_its_invocation() {
        let history = [
            unknown(write(2, 5, 0, v("b"))),
            read(3, 100, 110, None),
            read(3, 200, 210, None),
            read(3, 300, 310, v("b")),
        ];
        assert_linearizable(None, &history);
    }

    #[test]
    fn unknown_write_never_observed() {
        let history = [
            write(1, 0, 10, v("a")),
            unknown(write(2, 20, 0, v("b"))),
            read(3, 30, 40, v("a")),
            read(3, 50, 60, v("a")),
        ];
        assert_linearizable(None, &history);
    }

    #[test]
    fn unknown_write_cannot_be_undone() {
        let history = [
            write(1, 0, 10, v("a")),
            unknown(write(2, 20, 0, v("b"))),
            read(3, 30, 40, v("b")),
            read(3, 50, 60, v("a")),
        ];
        let violation = violation(None, &history);
        assert_eq!(violation.state, v("b"));
        assert_eq!(violation.stuck, vec![(3, history[3].clone())]);
        let message = violation.to_string();
        assert!(message.contains("outcome unknown"), "{message}");
    }

    #[test]
    fn unknown_write_cannot_take_effect_before_its_invocation() {
        let history = [read(3, 0, 10, v("b")), unknown(write(2, 20, 0, v("b")))];
        violation(None, &history);
    }

    #[test]
    fn unknown_read_is_dropped() {
        let history = [unknown(read(1, 0, 0, v("never")))];
        assert_linearizable(None, &history);
    }

    #[test]
    fn unknown_writes_can_take_effect_in_any_order() {
        // Two unknown writes, then reads that see b, then a, then b again: impossible with one
        // application each...
        let history = [
            unknown(write(1, 0, 0, v("a"))),
            unknown(write(2, 0, 0, v("b"))),
            read(3, 10, 20, v("b")),
            read(3, 30, 40, v("a")),
            read(3, 50, 60, v("b")),
        ];
        violation(None, &history);
        // ... but b then a is fine.
        assert_linearizable(None, &history[..4]);
    }

    #[test]
    fn cas_success_and_failure() {
        assert_linearizable(
            v("a"),
            &[cas(1, 0, 10, v("a"), v("b"), true), read(1, 20, 30, v("b"))],
        );
        assert_linearizable(
            v("x"),
            &[
                cas(1, 0, 10, v("a"), v("b"), false),
                read(1, 20, 30, v("x")),
            ],
        );
        // A success needs the expected value...
        violation(v("x"), &[cas(1, 0, 10, v("a"), v("b"), true)]);
        // ... and a failure needs a different one.
        let violation = violation(v("a"), &[cas(1, 0, 10, v("a"), v("b"), false)]);
        assert!(violation.to_string().contains("expected one"));
        // Creating an absent key with expected = None.
        assert_linearizable(
            None,
            &[cas(1, 0, 10, None, v("b"), true), read(1, 20, 30, v("b"))],
        );
    }

    #[test]
    fn concurrent_cas_only_one_can_win() {
        let history = [
            cas(1, 0, 10, None, v("a"), true),
            cas(2, 0, 10, None, v("b"), true),
        ];
        violation(None, &history);
        let history = [
            cas(1, 0, 10, None, v("a"), true),
            cas(2, 0, 10, None, v("b"), false),
            read(3, 20, 30, v("a")),
        ];
        assert_linearizable(None, &history);
    }

    #[test]
    fn unknown_cas_applies_only_if_it_can() {
        // It may have swapped a to b ...
        let history = [
            write(1, 0, 10, v("a")),
            unknown(cas(2, 20, 0, v("a"), v("b"), false)),
            read(3, 30, 40, v("b")),
        ];
        assert_linearizable(None, &history);
        // ... but not when the value was never a.
        let history = [
            write(1, 0, 10, v("c")),
            unknown(cas(2, 20, 0, v("a"), v("b"), true)),
            read(3, 30, 40, v("b")),
        ];
        violation(None, &history);
        // It may take effect after another write made its expectation true.
        let history = [
            unknown(cas(2, 0, 0, v("a"), v("b"), false)),
            write(1, 10, 20, v("a")),
            read(3, 30, 40, v("b")),
        ];
        assert_linearizable(None, &history);
    }

    #[test]
    fn tiny_budget_is_inconclusive() {
        let history = [
            write(1, 0, 10, v("a")),
            write(2, 0, 10, v("b")),
            read(3, 20, 30, v("a")),
            read(4, 40, 50, v("b")),
        ];
        assert_eq!(
            check(None, &history, 3),
            Verdict::Inconclusive { explored: 3 }
        );
        assert_eq!(
            check(None, &history, 0),
            Verdict::Inconclusive { explored: 0 }
        );
    }

    #[test]
    fn long_prefix_display_is_shortened() {
        let mut history: Vec<Operation> = (0..100)
            .map(|i| write(1, 10 * i, 10 * i + 5, v(&format!("v{i}"))))
            .collect();
        history.push(read(1, 5_000, 5_005, v("v3")));
        let violation = violation(None, &history);
        assert_eq!(violation.prefix.len(), 100);
        let message = violation.to_string();
        assert!(message.contains("showing the last 20"), "{message}");
        assert!(message.contains("\"v99\""), "{message}");
        assert!(!message.contains("\"v50\""), "{message}");
    }

    #[test]
    fn values_are_shown_readably() {
        assert_eq!(ShowValue(None).to_string(), "<absent>");
        assert_eq!(ShowValue(Some(b"a\"b")).to_string(), "\"a\\\"b\"");
        assert_eq!(ShowValue(Some(&[0, 255])).to_string(), "0x00ff");
        let long = [b'x'; 50];
        assert_eq!(
            ShowValue(Some(&long)).to_string(),
            format!("\"{}\"... (50 bytes)", "x".repeat(40))
        );
    }

    /// xorshift64* PRNG, deterministic.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn chance(&mut self, percent: u64) -> bool {
            self.below(100) < percent
        }
    }

    struct Generated {
        initial: Option<Vec<u8>>,
        history: Vec<Operation>,
    }

    /// Generates a linearizable history by construction: every client runs operations one after
    /// another; each operation that takes effect gets a linearization point inside its interval
    /// (or anywhere after its invocation if its outcome is unknown), and the results are those of
    /// a register applying the operations in the order of those points.
    fn generate(
        rng: &mut Rng,
        clients: u64,
        ops_per_client: u64,
        unknown_percent: u64,
    ) -> Generated {
        const VALUES: [&str; 4] = ["a", "b", "c", "d"];
        let pick = |rng: &mut Rng| -> Option<Vec<u8>> {
            if rng.chance(15) {
                None
            } else {
                v(VALUES[rng.below(VALUES.len() as u64) as usize])
            }
        };
        let initial = pick(rng);
        let mut history = Vec::new();
        // (linearization point, history index) of the operations that take effect.
        let mut points = Vec::new();
        for client in 0..clients {
            let mut now = rng.below(50);
            for _ in 0..ops_per_client {
                let invoke = now + 1 + rng.below(20);
                let at = invoke + rng.below(100);
                now = at;
                let kind = match rng.below(10) {
                    0..=3 => OpKind::Write { value: pick(rng) },
                    4..=7 => OpKind::Read {
                        observed: v("unset"),
                    },
                    _ => OpKind::CompareAndSet {
                        expected: pick(rng),
                        new: pick(rng),
                        succeeded: false,
                    },
                };
                let is_read = matches!(kind, OpKind::Read { .. });
                // Failed operations and unknown reads keep whatever they hold (a read's "unset" was
                // never written) and must be ignored.
                let outcome = if rng.chance(3) {
                    Outcome::Failed
                } else if rng.chance(if is_read { 3 } else { unknown_percent }) {
                    Outcome::Unknown
                } else {
                    Outcome::Returned { at }
                };
                let point = match outcome {
                    Outcome::Returned { .. } => Some(invoke + rng.below(at - invoke + 1)),
                    Outcome::Unknown if rng.chance(50) => Some(invoke + rng.below(500)),
                    _ => None,
                };
                if let Some(point) = point {
                    points.push((point, history.len()));
                }
                history.push(Operation {
                    client,
                    invoke,
                    outcome,
                    kind,
                });
            }
        }
        points.sort_unstable();
        let mut state = initial.clone();
        for (_, index) in points {
            match &mut history[index].kind {
                OpKind::Write { value } => state.clone_from(value),
                OpKind::Read { observed } => observed.clone_from(&state),
                OpKind::CompareAndSet {
                    expected,
                    new,
                    succeeded,
                } => {
                    *succeeded = state == *expected;
                    if *succeeded {
                        state.clone_from(new);
                    }
                }
            }
        }
        Generated { initial, history }
    }

    #[test]
    fn random_linearizable_histories_and_mutations() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut violations = 0;
        for round in 0..300 {
            let clients = 2 + rng.below(5);
            let unknown_percent = [0, 3, 8][round % 3];
            let ops_per_client = 5 + rng.below(30);
            let Generated { initial, history } =
                generate(&mut rng, clients, ops_per_client, unknown_percent);
            let verdict = check(initial.clone(), &history, BUDGET);
            assert_eq!(verdict, Verdict::Linearizable, "round {round}: {history:?}");

            // A read observing a value nobody wrote cannot be explained.
            let reads: Vec<usize> = (0..history.len())
                .filter(|&i| {
                    matches!(history[i].kind, OpKind::Read { .. })
                        && matches!(history[i].outcome, Outcome::Returned { .. })
                })
                .collect();
            if reads.is_empty() {
                continue;
            }
            let victim = reads[rng.below(reads.len() as u64) as usize];
            let mut mutated = history.clone();
            mutated[victim].kind = OpKind::Read {
                observed: v("never written"),
            };
            match check(initial, &mutated, BUDGET) {
                Verdict::Violation(violation) => {
                    assert!(violation.prefix.iter().all(|(i, _)| *i != victim));
                    violations += 1;
                }
                other => panic!("round {round}: expected a violation, got {other:?}"),
            }
        }
        assert!(violations > 250, "{violations}");
    }

    #[test]
    fn dominance_keeps_unknown_operations_for_later() {
        // The first search path explains the first read of b with the unknown write, reaching
        // {both writes, first read} in state b with the unknown write used, and then cannot
        // explain the second read. Ordering the two writes the other way reaches the same
        // operations and state without using the unknown write, which then explains the second
        // read: that configuration must not be considered already explored.
        let history = [
            unknown(write(9, 0, 0, v("b"))),
            write(1, 0, 10, v("b")),
            write(2, 0, 10, v("c")),
            read(3, 11, 20, v("b")),
            write(4, 21, 30, v("c")),
            read(5, 31, 40, v("b")),
        ];
        assert_linearizable(None, &history);
        // With a third read of b after another write of c, two unknown writes would be needed.
        let mut longer = history.to_vec();
        longer.push(write(4, 41, 50, v("c")));
        longer.push(read(5, 51, 60, v("b")));
        violation(None, &longer);
    }

    /// The specification, executed literally: some order of all returned operations and some
    /// of the unknown ones, respecting real time, in which every operation is valid.
    fn brute_force(state: Option<&[u8]>, history: &[Operation], placed: &mut [bool]) -> bool {
        let must_place = |op: &Operation| matches!(op.outcome, Outcome::Returned { .. });
        if (0..history.len()).all(|i| placed[i] || !must_place(&history[i])) {
            return true;
        }
        for i in 0..history.len() {
            let op = &history[i];
            let dropped = matches!(op.outcome, Outcome::Failed)
                || matches!(
                    (&op.outcome, &op.kind),
                    (Outcome::Unknown, OpKind::Read { .. })
                );
            if placed[i] || dropped {
                continue;
            }
            // Everything that returned before this operation was invoked must come first.
            let ready = history.iter().zip(placed.iter()).all(|(other, &done)| {
                done || !matches!(other.outcome, Outcome::Returned { at } if at < op.invoke)
            });
            let valid = match (&op.kind, &op.outcome) {
                (OpKind::Read { observed }, _) => observed.as_deref() == state,
                (OpKind::CompareAndSet { .. }, Outcome::Unknown) => true,
                (
                    OpKind::CompareAndSet {
                        expected,
                        succeeded,
                        ..
                    },
                    _,
                ) => (expected.as_deref() == state) == *succeeded,
                (OpKind::Write { .. }, _) => true,
            };
            if ready && valid {
                placed[i] = true;
                let found = brute_force(after(op, state), history, placed);
                placed[i] = false;
                if found {
                    return true;
                }
            }
        }
        false
    }

    #[test]
    fn agrees_with_brute_force_on_small_random_histories() {
        let mut rng = Rng(0x5eed);
        let values = [None, v("a"), v("b")];
        let mut seen = [0; 2];
        for round in 0..3_000 {
            let mut history = Vec::new();
            for client in 0..2 + rng.below(2) {
                let mut now = rng.below(4);
                for _ in 0..1 + rng.below(3) {
                    let invoke = now + rng.below(3);
                    let at = invoke + rng.below(6);
                    now = at + rng.below(2);
                    let value = |rng: &mut Rng| values[rng.below(3) as usize].clone();
                    let kind = match rng.below(3) {
                        0 => OpKind::Write {
                            value: value(&mut rng),
                        },
                        1 => OpKind::Read {
                            observed: value(&mut rng),
                        },
                        _ => OpKind::CompareAndSet {
                            expected: value(&mut rng),
                            new: value(&mut rng),
                            succeeded: rng.chance(50),
                        },
                    };
                    let outcome = match rng.below(10) {
                        0..=5 => Outcome::Returned { at },
                        6..=8 => Outcome::Unknown,
                        _ => Outcome::Failed,
                    };
                    history.push(Operation {
                        client,
                        invoke,
                        outcome,
                        kind,
                    });
                }
            }
            let initial = values[rng.below(3) as usize].clone();
            let expected = brute_force(
                initial.as_deref(),
                &history,
                &mut vec![false; history.len()],
            );
            let verdict = check(initial, &history, BUDGET);
            match (&verdict, expected) {
                (Verdict::Linearizable, true) => seen[0] += 1,
                (Verdict::Violation(_), false) => seen[1] += 1,
                _ => panic!("round {round}: {verdict:?}, brute force says {expected}: {history:?}"),
            }
        }
        // Both outcomes are well represented.
        assert!(seen[0] > 500 && seen[1] > 500, "{seen:?}");
    }

    #[test]
    fn large_history_with_unknown_operations() {
        let mut rng = Rng(42);
        let Generated { initial, history } = generate(&mut rng, 8, 250, 2);
        assert!(history.len() == 2_000);
        let unknown = history
            .iter()
            .filter(|op| matches!(op.outcome, Outcome::Unknown))
            .count();
        assert!(unknown >= 10, "{unknown}");
        assert_eq!(check(initial, &history, BUDGET), Verdict::Linearizable);
    }

    #[test]
    fn random_histories_with_a_stale_read_are_violations() {
        // A read that starts after a write returned and observes a value from before it.
        let mut rng = Rng(7);
        let mut checked = 0;
        for _ in 0..100 {
            let Generated {
                initial,
                mut history,
            } = generate(&mut rng, 3, 20, 0);
            let end = history
                .iter()
                .filter_map(|op| match op.outcome {
                    Outcome::Returned { at } => Some(at),
                    _ => None,
                })
                .max()
                .unwrap_or(0);
            // A fresh value, overwritten by a unique marker, then read back stale.
            history.push(write(9, end + 10, end + 20, v("fresh")));
            history.push(write(9, end + 30, end + 40, v("marker")));
            history.push(read(10, end + 50, end + 60, v("fresh")));
            let violation = violation(initial, &history);
            assert_eq!(violation.state, v("marker"));
            checked += 1;
        }
        assert_eq!(checked, 100);
    }
}
