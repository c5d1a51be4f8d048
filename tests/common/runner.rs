//! Runs operations on a real breaker the way user code would, and holds
//! the breaker against the model step by step.

use std::any::Any;
use std::cell::Cell;
use std::future::Future;
use std::panic::{catch_unwind, panic_any, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use circuit_runtime::{CallError, CircuitBreaker, CircuitOpenError, ManualClock, Permit, State};
use proptest::prelude::*;

use super::model::{Admitted, Model, Rejection, Verdict};
use super::ops::{AsyncEnd, Ending, Op, PermitEnd};

/// The payload of every panic a program injects. Any other panic is a bug.
pub struct Injected;

/// Keeps the injected panics quiet; any other panic is still reported.
pub fn silence_injected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<Injected>() {
                report(info);
            }
        }));
    });
}

/// Watches the bodies of the calls a runner makes.
pub trait Probe {
    /// A call is about to ask for admission.
    fn before_acquire(&self) {}
    /// An admitted call's body starts: right after admission, on the
    /// caller's thread. `admitted_in` is known for raw permits only.
    /// Returns a token for [`body_ends`](Probe::body_ends).
    fn body_starts(&self, admitted_in: Option<State>) -> Option<u64> {
        let _ = admitted_in;
        None
    }
    /// The body is done; its permit has not been settled yet.
    fn body_ends(&self, token: Option<u64>) {
        let _ = token;
    }
}

impl Probe for () {}

/// What one operation did.
#[derive(Debug)]
pub enum Step {
    Rejected(CircuitOpenError),
    /// Admitted and held: a raw permit (with the state it was admitted in)
    /// or a pending async call.
    Holding(Option<State>),
    /// A call ran, or a held one ended, and the breaker must count this.
    Ended(Verdict),
    /// Time moved, a command was given, or nothing was held to end.
    Other,
}

type Outcome = Result<(), CallError<Ending>>;

/// The body of a held async call: pending until told how to end.
struct Body<'p> {
    control: Rc<Control>,
    probe: &'p dyn Probe,
    started: bool,
}

#[derive(Default)]
struct Control {
    /// What the next poll does: `None` stays pending.
    next: Cell<Option<Ending>>,
    token: Cell<Option<u64>>,
}

impl Future for Body<'_> {
    type Output = Result<(), Ending>;

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        if !self.started {
            self.started = true;
            self.control.token.set(self.probe.body_starts(None));
        }
        match self.control.next.take() {
            None => Poll::Pending,
            Some(ending) => {
                self.probe.body_ends(self.control.token.take());
                Poll::Ready(ending.result())
            }
        }
    }
}

impl Ending {
    /// What a body that ends like this returns (or how it panics).
    fn result(self) -> Result<(), Ending> {
        match self {
            Ending::Success => Ok(()),
            Ending::Panic => panic_any(Injected),
            _ => Err(self),
        }
    }
}

/// The classifier of `call_with` and `call_async_with`.
#[allow(clippy::trivially_copy_pass_by_ref)] // the signature classifiers have
fn is_failure(error: &Ending) -> bool {
    match error {
        Ending::Ignored => false,
        Ending::ClassifierPanic => panic_any(Injected),
        _ => true,
    }
}

struct HeldCall<'b> {
    future: Pin<Box<dyn Future<Output = Outcome> + 'b>>,
    control: Rc<Control>,
    classified: bool,
}

fn poll(future: &mut Pin<Box<dyn Future<Output = Outcome> + '_>>) -> Poll<Outcome> {
    future
        .as_mut()
        .poll(&mut Context::from_waker(futures::task::noop_waker_ref()))
}

/// What a call that may panic did: `Ok(Some(value))` when it returned,
/// `Ok(None)` when it unwound with the injected panic it was meant to, and
/// `Err` for any other panic or an injected one that did not arrive.
fn returned<T>(unwound: std::thread::Result<T>, panics: bool) -> Result<Option<T>, String> {
    match unwound {
        Ok(value) if !panics => Ok(Some(value)),
        Ok(_) => Err("the injected panic did not reach the caller".into()),
        Err(payload) if panics && payload.is::<Injected>() => Ok(None),
        Err(payload) => Err(format!("a panic escaped: {}", describe(&*payload))),
    }
}

/// Checks what a call whose body ended like `ending` returned (`None`: it
/// unwound, as it was meant to).
fn check_outcome(ending: Ending, outcome: Option<Outcome>) -> Result<(), String> {
    match outcome {
        None => Ok(()),
        Some(Ok(())) if ending == Ending::Success => Ok(()),
        Some(Err(CallError::Failed(error))) if error == ending => Ok(()),
        Some(other) => Err(format!("{ending:?} returned {other:?}")),
    }
}

pub fn describe(payload: &(dyn Any + Send)) -> String {
    if payload.is::<Injected>() {
        "an injected panic".into()
    } else if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "a non-string panic".into()
    }
}

/// Applies operations to one breaker, holding permits and pending async
/// calls between steps.
pub struct Runner<'b> {
    breaker: &'b CircuitBreaker,
    clock: &'b ManualClock,
    probe: &'b dyn Probe,
    permits: Vec<(Permit<'b>, Option<u64>)>,
    calls: Vec<HeldCall<'b>>,
}

impl<'b> Runner<'b> {
    pub fn new(breaker: &'b CircuitBreaker, clock: &'b ManualClock, probe: &'b dyn Probe) -> Self {
        Runner {
            breaker,
            clock,
            probe,
            permits: Vec::new(),
            calls: Vec::new(),
        }
    }

    pub fn held_permits(&self) -> usize {
        self.permits.len()
    }

    pub fn held_calls(&self) -> usize {
        self.calls.len()
    }

    /// Applies `op`. `Err` says what went wrong where one thread can see
    /// it: a panic that was not injected, an injected one that did not
    /// reach its caller, a call that returned the wrong thing.
    pub fn step(&mut self, op: &Op) -> Result<Step, String> {
        match *op {
            Op::Call {
                ending,
                takes,
                classified,
            } => self.call(ending, takes, classified),
            Op::Acquire => {
                self.probe.before_acquire();
                Ok(match self.breaker.try_acquire() {
                    Ok(permit) => {
                        let state = permit.admitted_in();
                        let token = self.probe.body_starts(Some(state));
                        self.permits.push((permit, token));
                        Step::Holding(Some(state))
                    }
                    Err(rejection) => Step::Rejected(rejection),
                })
            }
            Op::Settle { index, end } => {
                if self.permits.is_empty() {
                    return Ok(Step::Other);
                }
                let (permit, token) = self.permits.remove(index % self.permits.len());
                self.probe.body_ends(token);
                end_permit(permit, end)?;
                Ok(Step::Ended(end.verdict()))
            }
            Op::StartAsync { classified } => self.start_async(classified),
            Op::FinishAsync { index, end } => {
                if self.calls.is_empty() {
                    return Ok(Step::Other);
                }
                let call = self.calls.remove(index % self.calls.len());
                let verdict = end.verdict(call.classified);
                self.finish_async(call, end)?;
                Ok(Step::Ended(verdict))
            }
            Op::Advance(by) => {
                self.clock.advance(by);
                Ok(Step::Other)
            }
            Op::RecordSuccess => {
                self.breaker.record_success();
                Ok(Step::Ended(Verdict::Success))
            }
            Op::RecordFailure => {
                self.breaker.record_failure();
                Ok(Step::Ended(Verdict::Failure))
            }
            Op::Reset => {
                self.breaker.reset();
                Ok(Step::Other)
            }
            Op::ForceOpen => {
                self.breaker.force_open();
                Ok(Step::Other)
            }
            Op::Disable => {
                self.breaker.disable();
                Ok(Step::Other)
            }
        }
    }

    fn call(
        &self,
        ending: Ending,
        takes: std::time::Duration,
        classified: bool,
    ) -> Result<Step, String> {
        self.probe.before_acquire();
        let ran = Cell::new(false);
        let body = || {
            ran.set(true);
            let token = self.probe.body_starts(None);
            self.clock.advance(takes);
            self.probe.body_ends(token);
            ending.result()
        };
        let unwound = catch_unwind(AssertUnwindSafe(|| {
            if classified {
                self.breaker.call_with(is_failure, body)
            } else {
                self.breaker.call(body)
            }
        }));
        if let Ok(Err(CallError::Rejected(rejection))) = unwound {
            return if ran.get() {
                Err("a rejected call ran".into())
            } else {
                Ok(Step::Rejected(rejection))
            };
        }
        if !ran.get() {
            return Err(format!("an admitted call did not run: {unwound:?}"));
        }
        check_outcome(ending, returned(unwound, ending.panics(classified))?)?;
        Ok(Step::Ended(ending.verdict(classified)))
    }

    fn start_async(&mut self, classified: bool) -> Result<Step, String> {
        self.probe.before_acquire();
        let control = Rc::new(Control::default());
        let body = Body {
            control: Rc::clone(&control),
            probe: self.probe,
            started: false,
        };
        let mut future: Pin<Box<dyn Future<Output = Outcome>>> = if classified {
            Box::pin(self.breaker.call_async_with(is_failure, body))
        } else {
            Box::pin(self.breaker.call_async(body))
        };
        match poll(&mut future) {
            Poll::Pending => {
                self.calls.push(HeldCall {
                    future,
                    control,
                    classified,
                });
                Ok(Step::Holding(None))
            }
            Poll::Ready(Err(CallError::Rejected(rejection))) => Ok(Step::Rejected(rejection)),
            Poll::Ready(other) => Err(format!("a pending call returned {other:?}")),
        }
    }

    fn finish_async(&mut self, call: HeldCall<'b>, end: AsyncEnd) -> Result<(), String> {
        let HeldCall {
            mut future,
            control,
            classified,
        } = call;
        match end {
            AsyncEnd::Complete(ending) => {
                control.next.set(Some(ending));
                let unwound = catch_unwind(AssertUnwindSafe(|| poll(&mut future)));
                match returned(unwound, ending.panics(classified))? {
                    None => {}
                    Some(Poll::Ready(outcome)) => check_outcome(ending, Some(outcome))?,
                    Some(Poll::Pending) => return Err(format!("{ending:?} left it pending")),
                }
                // After a panic, dropped only now, as an executor that
                // caught it would.
                drop(future);
            }
            AsyncEnd::PanicDroppedByUnwinding => {
                control.next.set(Some(Ending::Panic));
                let unwound = catch_unwind(AssertUnwindSafe(move || {
                    let mut future = future;
                    poll(&mut future)
                }));
                returned(unwound, true)?;
            }
            AsyncEnd::Cancel => {
                self.probe.body_ends(control.token.take());
                drop(future);
            }
            AsyncEnd::CancelInPanic => {
                self.probe.body_ends(control.token.take());
                let unwound = catch_unwind(AssertUnwindSafe(move || {
                    let _future = future;
                    panic_any(Injected);
                }));
                returned(unwound, true)?;
            }
        }
        Ok(())
    }

    /// Cancels everything still held (dropping the runner would too, but
    /// without telling the probe first).
    pub fn cancel_all(&mut self) {
        for (permit, token) in self.permits.drain(..) {
            self.probe.body_ends(token);
            drop(permit);
        }
        for call in self.calls.drain(..) {
            self.probe.body_ends(call.control.token.take());
            drop(call.future);
        }
    }
}

fn end_permit(permit: Permit<'_>, end: PermitEnd) -> Result<(), String> {
    match end {
        PermitEnd::Success => permit.record_success(),
        PermitEnd::Failure => permit.record_failure(),
        PermitEnd::Ignored => permit.record_ignored(),
        PermitEnd::Cancel => drop(permit),
        PermitEnd::DropInPanic => {
            let unwound = catch_unwind(AssertUnwindSafe(move || {
                let _held = permit;
                panic_any(Injected);
            }));
            returned(unwound, true)?;
        }
    }
    Ok(())
}

/// Runs `program` on `breaker` alone, and `model` beside it: after every
/// step the state, each admission or rejection, and every metric agree.
/// `origin` is where the breaker's clock stood when it was created.
pub fn check_against_model(
    breaker: &CircuitBreaker,
    clock: &ManualClock,
    origin: Instant,
    model: &mut Model,
    program: &[Op],
) -> Result<(), TestCaseError> {
    let mut runner = Runner::new(breaker, clock, &());
    // The model's side of what the runner holds, index for index.
    let mut permits: Vec<Admitted> = Vec::new();
    let mut calls: Vec<Admitted> = Vec::new();
    for (step, op) in program.iter().enumerate() {
        let mut run = |op: &Op| {
            runner
                .step(op)
                .map_err(|message| TestCaseError::fail(format!("step {step}, {op:?}: {message}")))
        };
        match *op {
            Op::Call { .. } | Op::Acquire | Op::StartAsync { .. } => {
                let expected = model.acquire();
                match (expected, run(op)?) {
                    (Err(rejection), Step::Rejected(actual)) => {
                        let actual = Rejection {
                            state: actual.state(),
                            retry_after: actual.retry_after(),
                        };
                        prop_assert_eq!(actual, rejection, "step {}: {:?}", step, op);
                    }
                    (Ok(admitted), Step::Ended(verdict)) => {
                        if let Op::Call { takes, .. } = op {
                            model.advance(*takes);
                        }
                        model.settle(admitted, verdict);
                    }
                    (Ok(admitted), Step::Holding(Some(state))) => {
                        prop_assert_eq!(state, admitted.state, "step {}: admitted in", step);
                        permits.push(admitted);
                    }
                    (Ok(admitted), Step::Holding(None)) => calls.push(admitted),
                    (expected, actual) => prop_assert!(
                        false,
                        "step {step}, {op:?}: model {expected:?}, breaker {actual:?}"
                    ),
                }
            }
            Op::Settle { index, .. } | Op::FinishAsync { index, .. } => {
                if let Step::Ended(verdict) = run(op)? {
                    let held = if matches!(op, Op::Settle { .. }) {
                        &mut permits
                    } else {
                        &mut calls
                    };
                    let admitted = held.remove(index % held.len());
                    model.settle(admitted, verdict);
                }
            }
            Op::RecordSuccess | Op::RecordFailure => {
                if let Step::Ended(verdict) = run(op)? {
                    // As if a call admitted now had ended so.
                    let admitted = model.admitted(false);
                    model.settle(admitted, verdict);
                }
            }
            Op::Advance(by) => {
                run(op)?;
                model.advance(by);
            }
            Op::Reset | Op::ForceOpen | Op::Disable => {
                run(op)?;
                model.transition(match op {
                    Op::Reset => State::Closed,
                    Op::ForceOpen => State::ForcedOpen,
                    _ => State::Disabled,
                });
            }
        }
        prop_assert_eq!(permits.len(), runner.held_permits());
        prop_assert_eq!(calls.len(), runner.held_calls());
        prop_assert_eq!(
            breaker.state(),
            model.observed_state(),
            "state after step {}: {:?}",
            step,
            op
        );
        prop_assert_eq!(
            breaker.metrics(),
            model.expected_metrics(origin),
            "metrics after step {}: {:?}",
            step,
            op
        );
    }
    runner.cancel_all();
    Ok(())
}
