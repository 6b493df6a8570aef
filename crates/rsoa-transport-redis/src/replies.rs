//! Waiting for responses: a few connections per master, each popping from the reply queues of many calls at once.
//!
//! Every call still has a reply queue of its own (so chunks of two responses can never interleave, and a late
//! response never reaches another call), but waiting on it no longer costs a connection. Per master, up to
//! `reply_connections` *listeners* each hold one connection and keep one `BLPOP` out over the reply queues of the
//! calls assigned to them, plus a wake key of their own:
//!
//! - A call is assigned to a listener that has no `BLPOP` out (idle, or between two pops): its key simply joins
//!   the next one. Failing that, to a new listener while there are fewer than the limit, and failing that, to the
//!   listener with the fewest calls, which is woken by a push to its wake key so that it sends its `BLPOP` again
//!   with the new key (one wake at a time per listener: a wake covers every key added before it is popped).
//! - A listener that has just handed responses over yields once before its next pop, so that the callers it
//!   answered, making their next call at once, join it instead of waking it.
//! - One `BLPOP` pops one frame, from the first ready queue in its list (which turns by one each time, so that no
//!   queue always comes last). So after a pop, a listener waiting on several calls drains every ready frame of all
//!   its queues, and blocks again only when a drain finds nothing: after small frames in one script call, after a
//!   large one (4 KB or more, which a script would copy at a cost) with a script that names the ready queues and
//!   plain `LPOP`s for them.
//! - The keys of one `BLPOP` are bounded by `replies_per_connection`; calls beyond `reply_connections ×
//!   replies_per_connection` wait in the process for a place, within their own deadline. A place is given back
//!   when the response's last frame is popped (not when the caller reads it), so sending many requests before
//!   reading any response cannot wedge the client.
//! - A listener that cannot open its connection (no file descriptors left, Redis at `maxclients`, refused) hands
//!   its calls to the listeners that are up, and only when there are none fails them, with a transient error; no
//!   new connection is tried for a second. A listener with nothing to wait for closes its connection after
//!   `idle_connection_timeout_in_seconds`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use fred::prelude::{ClientLike, ErrorKind, ListInterface, Value as RedisValue};
use fred::types::Key;
use rsoa_transport::Error as TransportError;
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::backend::{frame_bytes, lock, open_connection, Pusher, LARGE_FRAME};
use crate::frame;

/// How long one `BLPOP` waits before it is sent again. It bounds how long a lost wake can delay a response.
const BLOCK_SECONDS: f64 = 5.0;

/// How long past [`BLOCK_SECONDS`] the listener waits for `BLPOP`'s answer before taking the connection for dead.
const GRACE: Duration = Duration::from_secs(5);

/// After a connection could not be opened, no new one is tried for this long while others are up.
const RETRY_CONNECT_AFTER: Duration = Duration::from_secs(1);

/// A frame or the error that ended the wait, for the call waiting on one reply queue.
type Delivery = Result<Bytes, TransportError>;

/// How the listeners of one master connect and how many there may be.
#[derive(Clone)]
pub(crate) struct ReplySettings {
    pub(crate) label: String,
    pub(crate) template: fred::prelude::Client,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) per_connection: usize,
    pub(crate) idle_timeout: Duration,
    /// Where a wake goes in: `{prefix}{listener number}`.
    pub(crate) wake_prefix: String,
    /// For pushing wakes that no call sends (when a listener's calls move to another).
    pub(crate) pusher: Arc<Pusher>,
    pub(crate) queue_capacity: u64,
}

/// One master's listeners.
pub(crate) struct Replies {
    settings: ReplySettings,
    places: Arc<Semaphore>,
    hub: Mutex<Hub>,
    runtime: tokio::runtime::Handle,
}

struct Hub {
    listeners: Vec<Arc<Listener>>,
    next_number: u64,
    /// No new connection before this, after one could not be opened.
    no_connect_before: Option<Instant>,
}

struct Listener {
    wake_key: String,
    state: Mutex<ListenerState>,
    /// Wakes the listener's task when a key is added while no `BLPOP` is out.
    notify: Notify,
    /// The connection, once open (for closing it from outside the task).
    client: OnceLock<fred::prelude::Client>,
}

#[derive(Default)]
struct ListenerState {
    waiting: HashMap<Arc<str>, Waiting>,
    /// A `BLPOP` over the keys of `waiting`, as they were when it was sent, is out.
    armed: bool,
    /// A frame was pushed to the wake key and has not been popped yet.
    wake_pending: bool,
    /// The connection is open and the listener takes keys.
    connected: bool,
    /// The listener is gone (its connection failed to open, it idled out, or the backend closed).
    closed: bool,
}

/// One call's reply queue, as its listener holds it.
struct Waiting {
    frames: mpsc::UnboundedSender<Delivery>,
    /// The call's place among the master's `reply_connections × replies_per_connection`.
    _place: OwnedSemaphorePermit,
}

/// What a call holds while it waits: the frames popped from its reply queue, in order.
pub(crate) struct Waiter {
    key: Arc<str>,
    listener: Arc<Listener>,
    frames: mpsc::UnboundedReceiver<Delivery>,
}

impl Waiter {
    /// The next frame popped from the reply queue, or an error at the deadline (reported as waiting `wait`) or
    /// when the listener lost its connection.
    pub(crate) async fn next(
        &mut self,
        deadline: Instant,
        wait: Duration,
    ) -> Result<Bytes, TransportError> {
        match tokio::time::timeout_at(deadline, self.frames.recv()).await {
            Ok(Some(delivery)) => delivery,
            Ok(None) => Err(TransportError::Closed),
            Err(_) => {
                metrics::counter!(crate::metric::RECEIVE_TIMEOUT).increment(1);
                Err(TransportError::Timeout(wait))
            }
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        // The key stays in a `BLPOP` already out; a response popped for it then finds nobody and is dropped.
        lock(&self.listener.state).waiting.remove(&*self.key);
    }
}

/// How a call was assigned: what it waits on, and the wake key to push to, when its listener must be woken.
pub(crate) struct Assigned {
    pub(crate) waiter: Waiter,
    pub(crate) wake: Option<String>,
}

impl Replies {
    pub(crate) fn new(settings: ReplySettings, runtime: tokio::runtime::Handle) -> Replies {
        let places = settings.max_connections * settings.per_connection;
        Replies {
            places: Arc::new(Semaphore::new(places.min(Semaphore::MAX_PERMITS))),
            settings,
            hub: Mutex::new(Hub {
                listeners: Vec::new(),
                next_number: 0,
                no_connect_before: None,
            }),
            runtime,
        }
    }

    /// Starts waiting on `key`: takes a place (waiting for one until `deadline`, reported as waiting `wait`) and
    /// assigns the key to a listener. Call it before the request goes out.
    pub(crate) async fn wait(
        self: &Arc<Self>,
        key: String,
        deadline: Instant,
        wait: Duration,
    ) -> Result<Assigned, TransportError> {
        let place = match self.places.clone().try_acquire_owned() {
            Ok(place) => place,
            Err(_) => {
                match tokio::time::timeout_at(deadline, self.places.clone().acquire_owned()).await {
                    Ok(Ok(place)) => place,
                    Ok(Err(_)) => return Err(TransportError::Closed),
                    Err(_) => return Err(TransportError::Timeout(wait)),
                }
            }
        };
        let key: Arc<str> = key.into();
        let (frames, receiver) = mpsc::unbounded_channel();
        let waiting = Waiting {
            frames,
            _place: place,
        };
        let mut hub = lock(&self.hub);
        let (listener, wake) = match self.choose(&hub) {
            Some(listener) => {
                let wake = listener.add(key.clone(), waiting);
                (listener, wake)
            }
            None => {
                let listener = self.start_listener(&mut hub);
                let wake = listener.add(key.clone(), waiting);
                (listener, wake)
            }
        };
        drop(hub);
        Ok(Assigned {
            waiter: Waiter {
                key,
                listener,
                frames: receiver,
            },
            wake,
        })
    }

    /// The listener for a new key, or `None` when a new listener should be started for it.
    fn choose(&self, hub: &Hub) -> Option<Arc<Listener>> {
        // (not armed, number of keys): a listener with no `BLPOP` out takes a key for free.
        let mut best: Option<((bool, usize), &Arc<Listener>)> = None;
        for listener in &hub.listeners {
            let state = lock(&listener.state);
            if state.closed {
                continue;
            }
            let rank = (state.armed, state.waiting.len());
            if best.as_ref().is_none_or(|(b, _)| rank < *b) {
                best = Some((rank, listener));
            }
        }
        let may_grow = hub.listeners.len() < self.settings.max_connections
            && hub
                .no_connect_before
                .is_none_or(|not_before| Instant::now() >= not_before);
        match best {
            None => None,
            Some(((armed, keys), listener)) => {
                if may_grow && (armed || keys >= self.settings.per_connection) {
                    None
                } else {
                    Some(listener.clone())
                }
            }
        }
    }

    fn start_listener(self: &Arc<Self>, hub: &mut Hub) -> Arc<Listener> {
        let listener = Arc::new(Listener {
            wake_key: format!("{}{}", self.settings.wake_prefix, hub.next_number),
            state: Mutex::new(ListenerState::default()),
            notify: Notify::new(),
            client: OnceLock::new(),
        });
        hub.next_number += 1;
        hub.listeners.push(listener.clone());
        self.runtime.spawn(listen(
            Arc::downgrade(self),
            listener.clone(),
            self.settings.clone(),
        ));
        listener
    }

    /// How many listeners there are (connected or connecting).
    pub(crate) fn connections(&self) -> usize {
        lock(&self.hub).listeners.len()
    }

    /// Takes a listener out of service if it has nothing to wait for; false if a key arrived meanwhile.
    fn retire(&self, listener: &Arc<Listener>) -> bool {
        let mut hub = lock(&self.hub);
        let mut state = lock(&listener.state);
        if !state.waiting.is_empty() {
            return false;
        }
        state.closed = true;
        drop(state);
        hub.listeners.retain(|l| !Arc::ptr_eq(l, listener));
        true
    }

    /// A listener could not open its connection: its calls go to listeners that are up (woken as needed), or,
    /// when there are none, fail with `error`.
    async fn connect_failed(&self, listener: &Arc<Listener>, error: &TransportError) {
        let mut wakes = Vec::new();
        {
            let mut hub = lock(&self.hub);
            hub.no_connect_before = Some(Instant::now() + RETRY_CONNECT_AFTER);
            hub.listeners.retain(|l| !Arc::ptr_eq(l, listener));
            let orphans = {
                let mut state = lock(&listener.state);
                state.closed = true;
                std::mem::take(&mut state.waiting)
            };
            let up: Vec<&Arc<Listener>> = hub
                .listeners
                .iter()
                .filter(|l| {
                    let state = lock(&l.state);
                    state.connected && !state.closed
                })
                .collect();
            for (i, (key, waiting)) in orphans.into_iter().enumerate() {
                if waiting.frames.is_closed() {
                    continue;
                }
                match up.get(i % up.len().max(1)) {
                    Some(other) => {
                        if let Some(wake) = other.add(key, waiting) {
                            wakes.push(wake);
                        }
                    }
                    None => {
                        let _ = waiting.frames.send(Err(TransportError::connection(format!(
                            "cannot open a reply connection: {error}"
                        ))));
                    }
                }
            }
        }
        for wake in wakes {
            self.push_wake(&wake).await;
        }
    }

    /// Pushes a wake (for the rare wakes no call sends itself).
    async fn push_wake(&self, wake_key: &str) {
        if let Err(e) = self
            .settings
            .pusher
            .push_wake(self.settings.queue_capacity, wake_key)
            .await
        {
            tracing::debug!(key = wake_key, error = %e, "could not wake a reply listener; it looks again within seconds");
        }
    }

    /// Closes every listener: waiting calls fail with [`TransportError::Closed`].
    pub(crate) async fn close(&self) {
        let listeners = std::mem::take(&mut lock(&self.hub).listeners);
        for listener in listeners {
            listener.close();
            if let Some(client) = listener.client.get() {
                let _ = client.quit().await;
            }
        }
        self.places.close();
    }
}

impl Drop for Replies {
    fn drop(&mut self) {
        for listener in std::mem::take(&mut lock(&self.hub).listeners) {
            listener.close();
        }
    }
}

impl Listener {
    /// Adds a key; returns the wake key when a `BLPOP` without it is out and no wake is on its way yet.
    fn add(&self, key: Arc<str>, waiting: Waiting) -> Option<String> {
        let mut state = lock(&self.state);
        state.waiting.insert(key, waiting);
        if !state.armed {
            drop(state);
            self.notify.notify_one();
            None
        } else if !state.wake_pending {
            state.wake_pending = true;
            Some(self.wake_key.clone())
        } else {
            None
        }
    }

    /// Marks the listener gone and fails the calls waiting on it.
    fn close(&self) {
        self.end_waits(true, || TransportError::Closed);
        self.notify.notify_one();
    }

    /// Fails every waiting call after the connection broke.
    fn fail_all(&self, error: impl Fn() -> TransportError) {
        self.end_waits(false, error);
    }

    /// Takes every waiting call off the listener (nothing is out any more), failing each with `error`; with
    /// `close`, the listener takes no more.
    fn end_waits(&self, close: bool, error: impl Fn() -> TransportError) {
        let waiting = {
            let mut state = lock(&self.state);
            state.closed |= close;
            state.armed = false;
            state.wake_pending = false;
            std::mem::take(&mut state.waiting)
        };
        for (_, waiting) in waiting {
            let _ = waiting.frames.send(Err(error()));
        }
    }

    /// The keys of the waiting calls, for the next pop; `None` when nobody waits. With `blocking`, the pop is a
    /// `BLPOP`, marked out until it returns. Calls that went away without taking their key back are dropped here.
    fn keys(&self, blocking: bool) -> Option<Vec<Arc<str>>> {
        let mut state = lock(&self.state);
        if state.closed {
            return None;
        }
        state.waiting.retain(|_, w| !w.frames.is_closed());
        if state.waiting.is_empty() {
            state.armed = false;
            return None;
        }
        state.armed = blocking;
        Some(state.waiting.keys().cloned().collect())
    }

    /// Hands a frame popped by a `BLPOP` to its call; true when a call got it.
    fn deliver(&self, key: &[u8], frame: Bytes) -> bool {
        let mut state = lock(&self.state);
        state.armed = false;
        if key == self.wake_key.as_bytes() {
            state.wake_pending = false;
            return false;
        }
        let Ok(key) = std::str::from_utf8(key) else {
            return false;
        };
        state.hand_over(key, frame)
    }

    /// Hands frames drained from `keys` (by their index) to their calls.
    /// Returns whether a call got one, and whether every frame was small.
    fn deliver_drained(&self, keys: &[Arc<str>], frames: Vec<(usize, Bytes)>) -> (bool, bool) {
        let mut state = lock(&self.state);
        let mut delivered = false;
        let mut small = true;
        for (index, frame) in frames {
            small &= frame.len() < LARGE_FRAME;
            delivered |= state.hand_over(&keys[index], frame);
        }
        (delivered, small)
    }
}

impl ListenerState {
    /// Hands a frame to the call waiting on `key`, which stops waiting there after its response's last frame.
    fn hand_over(&mut self, key: &str, frame: Bytes) -> bool {
        let Some(waiting) = self.waiting.get(key) else {
            tracing::debug!(key, "dropped a response whose call no longer waits for it");
            return false;
        };
        let last = is_last_frame(&frame);
        let _ = waiting.frames.send(Ok(frame));
        if last {
            self.waiting.remove(key);
        }
        true
    }
}

/// Whether a response frame is the last of its response: not chunked, or the last chunk (an unreadable frame
/// ends the response too; the call reports it).
fn is_last_frame(frame: &[u8]) -> bool {
    match frame::parse(frame) {
        Ok(parsed) => match (parsed.chunk_count, parsed.chunk_id) {
            (Some(count), Some(id)) => count == id,
            _ => true,
        },
        Err(_) => true,
    }
}

/// A listener's task: opens the connection, then pops from the waiting calls' reply queues until it idles out or
/// the backend goes away.
async fn listen(replies: Weak<Replies>, me: Arc<Listener>, settings: ReplySettings) {
    let client = match open_connection(
        &settings.template,
        &settings.label,
        settings.connect_timeout,
    )
    .await
    {
        Ok(client) => client,
        Err(e) => {
            tracing::warn!(master = %settings.label, error = %e, "cannot open a reply connection");
            if let Some(replies) = replies.upgrade() {
                replies.connect_failed(&me, &e).await;
            } else {
                let message = e.to_string();
                me.fail_all(|| TransportError::connection(message.clone()));
            }
            return;
        }
    };
    let _ = me.client.set(client.clone());
    lock(&me.state).connected = true;
    let mut delivered = false;
    // After a pop that found a frame, the listener drains every other frame that is ready before it blocks again:
    // one `BLPOP` pops one frame. After small frames, in one script call; after a large one, with a script that
    // only says which queues are ready and plain `LPOP`s for those, since a script copies every frame it pops
    // into a Lua string at a cost (as for pushes, see `LARGE_FRAME`).
    let mut drain: Option<Drain> = None;
    // `BLPOP` pops from the first ready queue in its list: the list turns by one each time, so that no queue
    // always comes last.
    let mut turn = 0_usize;
    loop {
        if delivered {
            // Let the callers just answered run first: their next calls join the next pop without a wake.
            tokio::task::yield_now().await;
        }
        let Some(keys) = me.keys(drain.is_none()) else {
            drain = None;
            if lock(&me.state).closed {
                break;
            }
            let idled = tokio::time::timeout(settings.idle_timeout, me.notify.notified())
                .await
                .is_err();
            if idled {
                match replies.upgrade() {
                    Some(replies) if !replies.retire(&me) => continue,
                    _ => break,
                }
            }
            continue;
        };
        if let Some(way) = drain.take() {
            let names: Vec<&str> = keys.iter().map(|k| &**k).collect();
            delivered = false;
            let drained = match way {
                Drain::Small => settings.pusher.drain(&names).await,
                Drain::Large => settings.pusher.drain_large(&names).await,
            };
            match drained {
                Ok(frames) if !frames.is_empty() => {
                    let (handed, small) = me.deliver_drained(&keys, frames);
                    delivered = handed;
                    drain = Some(Drain::after(small));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(master = %settings.label, error = %e, "a drain failed; the next BLPOP pops instead")
                }
            }
            continue;
        }
        turn = turn.wrapping_add(1);
        let start = turn % keys.len();
        let mut blpop_keys: Vec<Key> = Vec::with_capacity(keys.len() + 1);
        blpop_keys.extend(
            keys[start..]
                .iter()
                .chain(&keys[..start])
                .map(|k| Key::from(&**k)),
        );
        blpop_keys.push(Key::from(me.wake_key.as_str()));
        let popped = tokio::time::timeout(
            Duration::from_secs_f64(BLOCK_SECONDS) + GRACE,
            client.blpop::<RedisValue, _>(blpop_keys, BLOCK_SECONDS),
        )
        .await;
        delivered = false;
        match popped {
            Ok(Ok(RedisValue::Array(mut pair))) if pair.len() == 2 => {
                let frame = pair.pop().and_then(frame_bytes);
                let key = pair.pop().and_then(frame_bytes);
                match (key, frame) {
                    (Some(key), Some(frame)) => {
                        let small = frame.len() < LARGE_FRAME;
                        delivered = me.deliver(&key, frame);
                        // Others may be ready too; with one call waiting, its next frame (if any) is popped next.
                        drain = (delivered && keys.len() > 1).then(|| Drain::after(small));
                    }
                    _ => lock(&me.state).armed = false,
                }
            }
            Ok(Ok(RedisValue::Null)) => lock(&me.state).armed = false,
            // fred reports BLPOP's nil reply as a timeout error (this connection has no command timeout of its own).
            Ok(Err(e)) if *e.kind() == ErrorKind::Timeout => lock(&me.state).armed = false,
            Ok(Ok(other)) => {
                tracing::warn!(master = %settings.label, reply = ?other, "unexpected BLPOP reply");
                lock(&me.state).armed = false;
            }
            Ok(Err(e)) => {
                if lock(&me.state).closed {
                    break;
                }
                tracing::warn!(master = %settings.label, error = %e, "a reply connection failed");
                me.fail_all(|| crate::backend::redis_error(&settings.label, &e));
                if e.details().starts_with("READONLY") {
                    // A master demoted by a failover: reconnecting asks the Sentinels for the new one.
                    let _ = client.force_reconnection().await;
                }
            }
            Err(_) => {
                // No answer at all: the connection is taken for dead. Whatever it popped is lost with it; the calls
                // keep waiting within their own deadlines.
                tracing::warn!(master = %settings.label, "a reply connection stopped answering; reconnecting");
                lock(&me.state).armed = false;
                let _ = client.force_reconnection().await;
            }
        }
    }
    lock(&me.state).connected = false;
    let _ = client.quit().await;
}

/// How a listener drains the frames ready after a pop.
#[derive(Clone, Copy)]
enum Drain {
    /// Frames and all, in one script call.
    Small,
    /// Which queues are ready, then plain `LPOP`s.
    Large,
}

impl Drain {
    fn after(small: bool) -> Drain {
        if small {
            Drain::Small
        } else {
            Drain::Large
        }
    }
}
