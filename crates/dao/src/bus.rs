//! Redis pub/sub between the nodes of one service: a channel per node (`node:<node>`) and one
//! that every node hears (`all-nodes`). Publishing goes through the pool; listening holds a
//! connection of its own, which [`Subscription`] wraps. Pub/sub keeps nothing: a message to a
//! node that is not listening is gone, and the count of listeners that `PUBLISH` returns is how
//! a publisher knows.

use deadpool_redis::redis::{self, aio::PubSubSink, aio::PubSubStream};
use futures_util::StreamExt as _;

use crate::{
    error::{Calls, DaoError, DaoResult},
    kv::{Keys, RedisPool},
};

/// The deadline of a publish on the send path (ms).
const PUBLISH_TIMEOUT_MS: u64 = 500;

#[derive(Clone)]
pub struct BusDao {
    pool: RedisPool,
    keys: Keys,
    calls: Calls,
    url: String,
}

/// A node's listening connection: its own channel and the one of all nodes.
pub struct Subscription {
    sink: PubSubSink,
    stream: PubSubStream,
    calls: Calls,
}

impl Subscription {
    /// The next message's payload; None once the connection is gone.
    pub async fn next(&mut self) -> Option<Vec<u8>> {
        self.stream.next().await.map(|m| m.get_payload_bytes().to_vec())
    }

    /// Asks the server to answer on the listening connection: a connection that hangs (the
    /// server frozen, the network cut without a reset) is found by this timing out.
    pub async fn ping(&mut self) -> DaoResult<()> {
        self.calls.run(self.sink.ping::<redis::Value>()).await.map(|_| ())
    }
}

impl BusDao {
    pub(crate) fn new(pool: RedisPool, keys: Keys, calls: Calls, url: String) -> Self {
        BusDao { pool, keys, calls, url }
    }

    /// Publishes each payload to its node's channel, in order, in one pipeline; how many
    /// listeners each reached (0: that node was not listening).
    pub async fn publish(&self, messages: &[(&str, Vec<u8>)]) -> DaoResult<Vec<u64>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (node, payload) in messages {
            pipe.cmd("PUBLISH").arg(self.keys.node_channel(node)).arg(payload.as_slice());
        }
        // on the send path: a slow Redis is given up on soon (the pushes count as not taken)
        let calls = self.calls.with_timeout(PUBLISH_TIMEOUT_MS);
        let mut c = calls.run(self.pool.get()).await?;
        calls.run(pipe.query_async(&mut *c)).await
    }

    /// Publishes a payload to every node; how many listened.
    pub async fn broadcast(&self, payload: &[u8]) -> DaoResult<u64> {
        let mut c = self.calls.run(self.pool.get()).await?;
        let publish = redis::cmd("PUBLISH").arg(self.keys.all_nodes_channel()).arg(payload).to_owned();
        self.calls.run(publish.query_async(&mut *c)).await
    }

    /// Opens a listening connection for `node`: its own channel and the one of all nodes.
    pub async fn subscribe(&self, node: &str) -> DaoResult<Subscription> {
        let calls = self.calls.clone();
        let channels = [self.keys.node_channel(node), self.keys.all_nodes_channel()];
        let open = async {
            let client = redis::Client::open(self.url.as_str())?;
            let (mut sink, stream) = client.get_async_pubsub().await?.split();
            sink.subscribe(&channels).await?;
            Ok::<_, DaoError>((sink, stream))
        };
        let (sink, stream) = calls.run(open).await?;
        Ok(Subscription { sink, stream, calls })
    }
}
