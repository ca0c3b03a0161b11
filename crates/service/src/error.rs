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
    #[error("message content is empty")]
    EmptyContent,
    #[error("message content is {len} bytes, over the limit of {max}")]
    ContentTooLarge { len: usize, max: usize },
    #[error("the peer has not answered {limit} messages; wait for a reply")]
    NoReplyLimit { limit: u32 },
    /// The sender used this client_msg_id for a message to someone else.
    #[error("client_msg_id {0:?} was already used for another conversation")]
    ClientMsgIdReused(String),
    /// The store is so far behind that the send queue is full; nothing was stored.
    #[error("the server is busy; nothing was stored, send again shortly")]
    Busy,
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
