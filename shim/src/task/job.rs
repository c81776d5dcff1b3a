//! How an RPC answers: at once, or when a runtime command has run. A runtime command may
//! take seconds or hang (an OCI hook, a stuck cgroup), and one shim serves a whole pod,
//! so it never runs on the event loop: the loop hands the [`Job`]'s work to a thread,
//! goes on serving the others, and applies the work's result ([`Finish`]) to the task
//! model when it is done.

use super::error::{Result, ShimError};
use super::TaskService;

/// What the loop does with a request.
pub enum Reply<T> {
    /// The answer, now.
    Now(Result<T>),
    /// The answer once a job has run.
    Later(Job<T>),
}

/// A runtime command to run off the loop, and what then happens on the loop.
pub struct Job<T> {
    pub order: Order,
    pub work: Box<dyn Work<T>>,
}

/// Runs on the loop with the work's result.
pub type Finish<T> = Box<dyn FnOnce(&TaskService) -> Result<T> + Send>;

/// The part of a job that runs off the loop, and how it steps back when it cannot run.
pub trait Work<T>: Send {
    /// Runs off the loop; touches nothing but what it was given.
    fn run(self: Box<Self>) -> Finish<T>;
    /// What happens on the loop instead when no thread can run it (the shim is at its
    /// pids limit): whatever the request took when it was accepted is given back, and
    /// the request is answered with `why`.
    fn cancel(self: Box<Self>, why: ShimError) -> Finish<T>;
}

/// Work whose acceptance took something from the task model (a Create's id, a Start's
/// process marked as being started), which must be given back if it never runs.
pub trait Plan: Send + 'static {
    type Done: Send + 'static;
    /// Runs off the loop.
    fn run(self) -> Self::Done;
    /// On the loop, when the plan will never run.
    fn cancel(self, service: &TaskService);
}

/// When a job of a container may run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Order {
    /// After the container's earlier in-turn jobs and the at-once jobs that came before
    /// it, one at a time: Create, Start, Delete, Pause, Resume, Update, Checkpoint.
    InTurn(String),
    /// At once, whatever runs: Kill and Pids never wait behind a hung command, which
    /// is how a user recovers from one (but the Kill of an exec being started, which has
    /// no process yet, waits in turn for its Start). A later in-turn job waits for it (a
    /// Delete does not overtake its Kill).
    AtOnce(String),
}

impl Order {
    pub fn key(&self) -> &str {
        match self {
            Order::InTurn(k) | Order::AtOnce(k) => k,
        }
    }
}

/// A reply that will come from `work`, then `finish` on the loop; a job that took
/// nothing when it was accepted, so that not running it needs no undoing.
pub fn later<T, W>(
    order: Order,
    work: impl FnOnce() -> W + Send + 'static,
    finish: impl FnOnce(&TaskService, W) -> Result<T> + Send + 'static,
) -> Reply<T>
where
    T: 'static,
    W: Send + 'static,
{
    Reply::Later(Job::new(order, work, finish))
}

/// A reply that will come from `plan` run off the loop, then `finish` on the loop; the
/// plan is cancelled if it cannot run.
pub fn planned<T, P: Plan>(
    order: Order,
    plan: P,
    finish: impl FnOnce(&TaskService, P::Done) -> Result<T> + Send + 'static,
) -> Reply<T>
where
    T: 'static,
{
    Reply::Later(Job {
        order,
        work: Box::new(Planned { plan, finish }),
    })
}

impl<T: 'static> Job<T> {
    /// A job of `work` off the loop, then `finish` on it.
    pub fn new<W: Send + 'static>(
        order: Order,
        work: impl FnOnce() -> W + Send + 'static,
        finish: impl FnOnce(&TaskService, W) -> Result<T> + Send + 'static,
    ) -> Job<T> {
        Job {
            order,
            work: Box::new(Planned {
                plan: Unplanned(work),
                finish,
            }),
        }
    }

    pub fn map<U: 'static>(self, f: fn(T) -> U) -> Job<U> {
        Job {
            order: self.order,
            work: Box::new(Mapped {
                inner: self.work,
                f,
            }),
        }
    }
}

impl<T: 'static> Reply<T> {
    /// The same reply, its answer turned by `f` (encoding it for the wire).
    pub fn map<U: 'static>(self, f: fn(T) -> U) -> Reply<U> {
        match self {
            Reply::Now(r) => Reply::Now(r.map(f)),
            Reply::Later(job) => Reply::Later(job.map(f)),
        }
    }
}

/// A plan and what finishes it on the loop.
struct Planned<P, F> {
    plan: P,
    finish: F,
}

impl<T, P, F> Work<T> for Planned<P, F>
where
    T: 'static,
    P: Plan,
    F: FnOnce(&TaskService, P::Done) -> Result<T> + Send + 'static,
{
    fn run(self: Box<Self>) -> Finish<T> {
        let Planned { plan, finish } = *self;
        let done = plan.run();
        Box::new(move |service: &TaskService| finish(service, done))
    }

    fn cancel(self: Box<Self>, why: ShimError) -> Finish<T> {
        let plan = self.plan;
        Box::new(move |service: &TaskService| {
            plan.cancel(service);
            Err(why)
        })
    }
}

/// Work that took nothing when it was accepted.
struct Unplanned<W>(W);

impl<W, D> Plan for Unplanned<W>
where
    W: FnOnce() -> D + Send + 'static,
    D: Send + 'static,
{
    type Done = D;
    fn run(self) -> D {
        (self.0)()
    }
    fn cancel(self, _: &TaskService) {}
}

/// Work whose answer is turned by `f`.
struct Mapped<T, U> {
    inner: Box<dyn Work<T>>,
    f: fn(T) -> U,
}

impl<T: 'static, U: 'static> Work<U> for Mapped<T, U> {
    fn run(self: Box<Self>) -> Finish<U> {
        let (finish, f) = (self.inner.run(), self.f);
        Box::new(move |service: &TaskService| finish(service).map(f))
    }

    fn cancel(self: Box<Self>, why: ShimError) -> Finish<U> {
        let (finish, f) = (self.inner.cancel(why), self.f);
        Box::new(move |service: &TaskService| finish(service).map(f))
    }
}

impl<T> From<Result<T>> for Reply<T> {
    fn from(r: Result<T>) -> Self {
        Reply::Now(r)
    }
}
