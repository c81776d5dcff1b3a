//! How an RPC answers: at once, or when a runtime command has run. A runtime command may
//! take seconds or hang (an OCI hook, a stuck cgroup), and one shim serves a whole pod,
//! so it never runs on the event loop: the loop hands the [`Job`]'s work to a thread,
//! goes on serving the others, and applies the work's result ([`Finish`]) to the task
//! model when it is done.

use super::error::Result;
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
    pub work: Work<T>,
}

/// Runs off the loop; touches nothing but what it was given.
pub type Work<T> = Box<dyn FnOnce() -> Finish<T> + Send>;
/// Runs on the loop with the work's result.
pub type Finish<T> = Box<dyn FnOnce(&TaskService) -> Result<T> + Send>;

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

/// A reply that will come from `work`, then `finish` on the loop.
pub fn later<T, W>(
    order: Order,
    work: impl FnOnce() -> W + Send + 'static,
    finish: impl FnOnce(&TaskService, W) -> Result<T> + Send + 'static,
) -> Reply<T>
where
    W: Send + 'static,
{
    Reply::Later(Job {
        order,
        work: Box::new(move || {
            let done = work();
            Box::new(move |service: &TaskService| finish(service, done))
        }),
    })
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

impl<T: 'static> Job<T> {
    pub fn map<U: 'static>(self, f: fn(T) -> U) -> Job<U> {
        let work = self.work;
        Job {
            order: self.order,
            work: Box::new(move || {
                let finish = work();
                Box::new(move |service: &TaskService| finish(service).map(f))
            }),
        }
    }
}

impl<T> From<Result<T>> for Reply<T> {
    fn from(r: Result<T>) -> Self {
        Reply::Now(r)
    }
}
