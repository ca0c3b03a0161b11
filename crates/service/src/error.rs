use chat_dao::{DaoError, Store};

/// Everything a rule can refuse, and the store failures behind the rest.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A field of a request breaks its rule.
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    #[error("user_name is taken")]
    UserNameTaken,
    /// Unknown user or wrong password: one error for both.
    #[error("wrong user name or password")]
    InvalidCredentials,
    /// No token, or a token that is not (or no longer) a session.
    #[error("not logged in")]
    Unauthenticated,
    #[error("no such user")]
    UserNotFound,
    #[error("a conversation needs another user")]
    SelfChat,
    /// No such group, or it was dissolved.
    #[error("no such group")]
    GroupNotFound,
    /// The user is not a member of the group (or no longer is).
    #[error("you are not a member of this group")]
    NotMember,
    /// A member whose role does not allow the change; the text says who may.
    #[error("{0}")]
    NotAllowed(String),
    /// Users named in a request who are not registered.
    #[error("no such users: {0:?}")]
    UnknownUsers(Vec<u64>),
    #[error("a group has at most {max} members")]
    TooManyMembers { max: usize },
    #[error("message content is empty")]
    EmptyContent,
    #[error("message content is {len} bytes, over the limit of {max}")]
    ContentTooLarge { len: usize, max: usize },
    #[error("the peer has not answered {limit} messages; wait for a reply")]
    NoReplyLimit { limit: u32 },
    /// The sender used this client_msg_id for a message to someone else.
    #[error("client_msg_id {0:?} was already used for another conversation")]
    ClientMsgIdReused(String),
    /// The sender used this client_msg_id for a message with other content.
    #[error("client_msg_id {0:?} was already used for a message with other content; nothing was stored")]
    ClientMsgIdConflict(String),
    /// The store is so far behind that the send queue is full (or password hashing is), and
    /// nothing was done.
    #[error("the server is busy; nothing was stored, try again shortly")]
    Busy,
    /// Over a rate or an attempt limit; nothing was done.
    #[error("too many requests; try again in {} s", retry_after_ms.div_ceil(1000))]
    RateLimited { retry_after_ms: u64 },
    /// The user already holds the most live connections allowed.
    #[error("too many connections: at most {max} per user")]
    TooManyConnections { max: u32 },
    /// The server is shutting down; nothing was stored.
    #[error("the server is shutting down; nothing was stored, reconnect and send again")]
    ShuttingDown,
    /// A send whose fate this process lost track of (its committer stopped unexpectedly while
    /// storing it): it may or may not be stored.
    #[error("the send may or may not be stored; resend it with the same client_msg_id")]
    OutcomeUnknown,
    #[error(transparent)]
    Dao(#[from] DaoError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    /// A copy for each of the sends one failure answers (the committer's errors: a store
    /// failing, the no-reply limit; anything else as internal).
    pub(crate) fn shared(&self) -> ServiceError {
        match self {
            ServiceError::Dao(d) => ServiceError::Dao(d.shared()),
            ServiceError::NoReplyLimit { limit } => ServiceError::NoReplyLimit { limit: *limit },
            ServiceError::ShuttingDown => ServiceError::ShuttingDown,
            ServiceError::GroupNotFound => ServiceError::GroupNotFound,
            ServiceError::NotMember => ServiceError::NotMember,
            other => ServiceError::Internal(other.to_string()),
        }
    }

    /// The store that failed, for errors that are a store failing.
    pub fn unavailable_store(&self) -> Option<Store> {
        match self {
            ServiceError::Dao(e) => e.store(),
            _ => None,
        }
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
