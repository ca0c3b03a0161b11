// The tab's one device WebSocket (/ws, no toUid): it carries every conversation. Connects,
// reconnects with backoff, and pairs each reply with the frame it answers: the server answers
// frames in order, except that an accepted typing frame gets no reply, so typing goes out
// unpaired (fire). Events (messages, read receipts, typing, presence) come in between.

export const Code = Object.freeze({
  INCOMING: 50001,
  CONNECTED: 50002,
  END: 50003,
  DELIVERED: 50004,
  STORED: 50005,
  LIMIT: 50006,
  HISTORY: 50007,
  UNREAD: 50008,
  INVALID: 50101,
  BINARY: 50102,
  UNKNOWN_TYPE: 50103,
  EMPTY: 50104,
  TOO_LARGE: 50105,
  UNAVAILABLE: 50106,
  INTERNAL: 50107,
  SESSION_ENDED: 50108,
  BUSY: 50109,
  RATE_LIMITED: 50110,
  CONFLICT: 50111,
  SHUTTING_DOWN: 50112,
  NOT_MEMBER: 50113,
  CATCH_UP: 50009,
  READ: 50010,
  TYPING: 50011,
  PRESENCE: 50012,
});

const CLOSE_SESSION_ENDED = 4001;
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];

/**
 * handlers:
 *   onStatus(status)          'connecting' | 'open' | 'reconnecting' | 'closed'
 *   onConnected()             the server's 50002: send the first requests now
 *   onEvent(frame)            50001, 50010, 50011, 50012: not answers to anything of ours
 *   onReply(request, frame)   the reply to a frame sent with send(frame, request)
 *   onSessionEnded()          50108 or close 4001: do not reconnect
 *   checkSession()            before a reconnect; resolve false when the session is gone
 */
export class ChatSocket {
  constructor({ token, handlers }) {
    this.token = token;
    this.h = handlers;
    this.ws = null;
    this.ready = false; // 50002 seen on the current socket
    this.pending = []; // requests awaiting their reply, oldest first
    this.attempt = 0;
    this.timer = null;
    this.stopped = false;
  }

  start() {
    this.connect();
  }

  get isReady() {
    return this.ready && this.ws?.readyState === WebSocket.OPEN;
  }

  /** Sends a frame; `request` comes back with its reply. False when not connected. */
  send(frame, request) {
    if (!this.isReady) return false;
    try {
      this.ws.send(JSON.stringify(frame));
    } catch {
      return false;
    }
    this.pending.push(request);
    return true;
  }

  /** Sends a frame that gets no reply when accepted (typing). False when not connected. */
  fire(frame) {
    if (!this.isReady) return false;
    try {
      this.ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = null;
    this.ready = false;
    this.pending = [];
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, 'closed by the user');
    this.h.onStatus('closed');
  }

  connect() {
    if (this.stopped) return;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const query = new URLSearchParams({ token: this.token });
    let ws;
    try {
      ws = new WebSocket(`${scheme}://${location.host}/ws?${query}`);
    } catch {
      this.retry();
      return;
    }
    this.ws = ws;
    this.ready = false;
    this.pending = [];
    this.h.onStatus(this.attempt === 0 ? 'connecting' : 'reconnecting');
    ws.addEventListener('message', (ev) => {
      if (ws === this.ws) this.onMessage(ev.data);
    });
    ws.addEventListener('close', (ev) => {
      if (ws === this.ws) this.onClose(ev.code);
    });
  }

  onMessage(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (!frame || typeof frame.code !== 'number') return;
    switch (frame.code) {
      case Code.CONNECTED:
        this.ready = true;
        this.attempt = 0;
        this.h.onStatus('open');
        this.h.onConnected();
        return;
      case Code.INCOMING:
      case Code.TYPING:
      case Code.PRESENCE:
        this.h.onEvent(frame);
        return;
      case Code.READ: {
        // The reply to my read receipt and the same receipt from my other tab (or the peer)
        // look alike and are handled alike; the reply only takes its place in the queue: a
        // receipt of mine for that conversation waiting first.
        const head = this.pending[0];
        if (head?.kind === 'read' && frame.user_id === head.me && frame.conv === head.convId) this.pending.shift();
        this.h.onEvent(frame);
        return;
      }
      case Code.SESSION_ENDED:
        this.end();
        return;
      default: {
        const request = this.pending.shift() ?? null;
        this.h.onReply(request, frame);
      }
    }
  }

  onClose(code) {
    this.ws = null;
    this.ready = false;
    this.pending = [];
    if (this.stopped) return;
    if (code === CLOSE_SESSION_ENDED) {
      this.end();
      return;
    }
    this.retry();
  }

  end() {
    if (this.stopped) return;
    this.stop();
    this.h.onSessionEnded();
  }

  retry() {
    if (this.stopped) return;
    this.h.onStatus('reconnecting');
    const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    const delay = base / 2 + Math.random() * base; // jitter: many clients do not come back at once
    this.attempt += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(async () => {
      if (this.stopped) return;
      // A socket refused at the handshake looks like any drop; ask whether the session still exists.
      let alive = true;
      try {
        alive = await this.h.checkSession();
      } catch {
        alive = true; // the server is unreachable: keep trying
      }
      if (this.stopped) return;
      if (alive) this.connect();
      else this.end();
    }, delay);
  }
}
