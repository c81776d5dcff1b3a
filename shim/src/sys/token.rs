//! What each epoll registration is for. The loop's set holds the listener, the reaper's
//! signalfd, the OOM watcher's set, the jobs' eventfd, every client connection and both
//! ends of every stdio pump; the OOM watcher's own set holds one watch per container.
//! Every token is made and read here: the kind in the top byte, an id below it, so no
//! two owners can give one bit two meanings.

/// Whose readiness an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Token {
    Listener,
    Reaper,
    /// The OOM watcher's set (in the loop's set).
    Oom,
    Jobs,
    Connection(u64),
    /// A pump's source: data to copy.
    PumpSource(u64),
    /// A pump's target: room to copy into, or a reader gone.
    PumpTarget(u64),
    /// The pipe end a pump's helper thread holds until its output is done.
    PumpHelper(u64),
    /// One container's OOM watch, in the OOM watcher's own set.
    OomWatch(u64),
}

const KIND_SHIFT: u32 = 56;
/// Ids are counters of this shim's life; 2^56 of them never run out.
const ID_MASK: u64 = (1 << KIND_SHIFT) - 1;

impl Token {
    /// The u64 epoll carries.
    pub fn to_raw(self) -> u64 {
        let (kind, id) = match self {
            Token::Listener => (1, 0),
            Token::Reaper => (2, 0),
            Token::Oom => (3, 0),
            Token::Jobs => (4, 0),
            Token::Connection(id) => (5, id),
            Token::PumpSource(id) => (6, id),
            Token::PumpTarget(id) => (7, id),
            Token::PumpHelper(id) => (8, id),
            Token::OomWatch(id) => (9, id),
        };
        debug_assert!(id <= ID_MASK, "token id {id} out of range");
        (kind << KIND_SHIFT) | (id & ID_MASK)
    }

    /// The token epoll gave back; None for a value no registration was made with.
    pub fn from_raw(raw: u64) -> Option<Token> {
        let id = raw & ID_MASK;
        let fixed = |t: Token| (id == 0).then_some(t);
        match raw >> KIND_SHIFT {
            1 => fixed(Token::Listener),
            2 => fixed(Token::Reaper),
            3 => fixed(Token::Oom),
            4 => fixed(Token::Jobs),
            5 => Some(Token::Connection(id)),
            6 => Some(Token::PumpSource(id)),
            7 => Some(Token::PumpTarget(id)),
            8 => Some(Token::PumpHelper(id)),
            9 => Some(Token::OomWatch(id)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(id: u64) -> [Token; 9] {
        [
            Token::Listener,
            Token::Reaper,
            Token::Oom,
            Token::Jobs,
            Token::Connection(id),
            Token::PumpSource(id),
            Token::PumpTarget(id),
            Token::PumpHelper(id),
            Token::OomWatch(id),
        ]
    }

    #[test]
    fn every_token_comes_back_as_itself() {
        for id in [0, 1, 62, 1 << 40, ID_MASK] {
            for t in all(id) {
                assert_eq!(Token::from_raw(t.to_raw()), Some(t), "{t:?}");
            }
        }
    }

    #[test]
    fn no_two_tokens_share_a_value() {
        let mut raws: Vec<u64> = [1, 2, 1 << 40]
            .into_iter()
            .flat_map(all)
            .map(Token::to_raw)
            .collect();
        raws.sort();
        raws.dedup();
        // The four fixed tokens appear once per id tried, the same value each time.
        assert_eq!(raws.len(), 4 + 5 * 3);
    }

    #[test]
    fn values_no_registration_was_made_with_are_nobodys() {
        assert_eq!(Token::from_raw(0), None);
        assert_eq!(Token::from_raw(0xff << KIND_SHIFT), None);
        assert_eq!(
            Token::from_raw((1 << KIND_SHIFT) | 5),
            None,
            "a listener with an id"
        );
    }
}
