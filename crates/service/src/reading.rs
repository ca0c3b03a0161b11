//! Reading a conversation: history, unread and catch-up pages (in a group, only what the
//! member may see), and the read mark an unread page leaves once written.

use bson::DateTime;
use chat_model::{ChatMessage, MessageDoc, Target};

use crate::{
    chat::{ChatService, expiry, to_i64},
    error::ServiceResult,
    reads::{ReadMark, Seen},
};

/// A page of messages, oldest first (unread, or a catch-up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadPage {
    pub messages: Vec<ChatMessage>,
    /// More messages wait after these.
    pub more: bool,
}

/// Catch-up pages: this many messages unless the client asks for fewer, at most
/// [`CATCH_UP_MAX`].
pub const CATCH_UP_DEFAULT: i64 = 100;
pub const CATCH_UP_MAX: i64 = 500;

impl ChatService {
    /// A page of the conversation, newest first: seq below `before_seq`, or the newest (in a
    /// group, only what the member may see).
    pub async fn history(
        &self,
        user: u64,
        target: Target,
        before_seq: Option<i64>,
        limit: Option<i64>,
    ) -> ServiceResult<Vec<ChatMessage>> {
        let max = i64::from(self.settings.history_max_limit.max(1));
        let limit = limit.unwrap_or(i64::from(self.settings.history_default_limit)).clamp(1, max);
        let after = self.visible_after(user, target).await?;
        let docs = self.messages.history(&target.conv(user), before_seq, after, limit).await?;
        Ok(docs.iter().map(ChatMessage::from).collect())
    }

    /// The oldest unread messages of the conversation, both sides' (as the demo did: the
    /// user's own show what the peer has not read yet), with seq above `after` (a connection
    /// passes the last seq it was given, so the next page needs no wait for the marks), at
    /// most `unread_max`. Nothing is marked read here: [`Self::written_unread`] does, once they
    /// were written, for those sent to the user.
    ///
    /// In a group: the messages after the user's read position (and after what they may see)
    /// that others sent.
    pub async fn unread(&self, user: u64, target: Target, after: Option<i64>) -> ServiceResult<UnreadPage> {
        let peer = match target {
            Target::User(peer) => peer,
            Target::Group(_) => return self.group_unread(user, target, after).await,
        };
        let max = self.settings.unread_max.max(1) as usize;
        let conv = target.conv(user);
        let users = [to_i64(user)?, to_i64(peer)?];
        let (page, state) = tokio::join!(
            self.messages.unread_for(&users, &conv, after.unwrap_or(0), max as i64 + 1),
            self.conversations.read_state(&conv)
        );
        let (mut docs, (last_seq, read)) = (page?, state?);
        let more = docs.len() > max;
        docs.truncate(max);
        // the positions are the truth: a flag that did not follow its position yet (a write
        // that failed) is not shown as unread, and is set now; a message not on record yet (its
        // commit is still writing the summary) is not shown either
        let to = |d: &MessageDoc| d.to.unwrap_or_default();
        let behind: Vec<i64> =
            docs.iter().filter(|d| d.seq <= read.get(&to(d)).copied().unwrap_or(0)).map(to).collect();
        docs.retain(|d| d.seq <= last_seq && d.seq > read.get(&to(d)).copied().unwrap_or(0));
        for to in behind.into_iter().collect::<std::collections::HashSet<_>>() {
            let (messages, conv, upto) = (self.messages.clone(), conv.clone(), read.get(&to).copied().unwrap_or(0));
            let expire_at = expiry(DateTime::now(), self.settings.retention_secs);
            tokio::spawn(async move { messages.mark_read_upto(&conv, to, upto, expire_at).await });
        }
        Ok(UnreadPage { messages: docs.iter().map(ChatMessage::from).collect(), more })
    }

    async fn group_unread(&self, user: u64, target: Target, after: Option<i64>) -> ServiceResult<UnreadPage> {
        let max = self.settings.unread_max.max(1) as usize;
        let conv = target.conv(user);
        let (visible, state) = tokio::join!(self.visible_after(user, target), self.conversations.read_state(&conv));
        let (visible, (last_seq, read)) = (visible?, state?);
        let me = to_i64(user)?;
        let after = visible.max(read.get(&me).copied().unwrap_or(0)).max(after.unwrap_or(0));
        let mut docs = self.messages.others_after(&conv, me, after, max as i64 + 1).await?;
        let more = docs.len() > max;
        docs.truncate(max);
        // a message not on record yet (its commit is still writing the summary) waits
        docs.retain(|d| d.seq <= last_seq);
        Ok(UnreadPage { messages: docs.iter().map(ChatMessage::from).collect(), more })
    }

    /// An unread page of the conversation was written to `user`'s connection: the user's read
    /// position moves to its last message (every unread message to the user up to it is in the
    /// page), by the read marks, like pushes, a moment after the write.
    pub fn written_unread(&self, user: u64, target: Target, messages: &[ChatMessage]) {
        let (Some(seq), Ok(reader)) = (messages.iter().map(|m| m.seq).max(), to_i64(user)) else {
            return;
        };
        let conv = target.conv(user).into();
        self.marks.mark(ReadMark { conv, reader, with: target, seq, seen: Seen::UpTo });
    }

    /// Catch-up: the conversation's messages with seq above `after_seq`, oldest first, at most
    /// `limit` ([`CATCH_UP_DEFAULT`], at most [`CATCH_UP_MAX`]). Marks nothing read.
    pub async fn catch_up(
        &self,
        user: u64,
        target: Target,
        after_seq: i64,
        limit: Option<i64>,
    ) -> ServiceResult<UnreadPage> {
        let limit = limit.unwrap_or(CATCH_UP_DEFAULT).clamp(1, CATCH_UP_MAX);
        let after = after_seq.max(self.visible_after(user, target).await?);
        let mut docs = self.messages.after(&target.conv(user), after, limit + 1).await?;
        let more = docs.len() as i64 > limit;
        docs.truncate(limit as usize);
        Ok(UnreadPage { messages: docs.iter().map(ChatMessage::from).collect(), more })
    }
}
