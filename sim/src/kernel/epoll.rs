//! epoll as `fs/eventpoll.c` implements it: a callback-driven ready list with a re-poll at
//! report time, not a level/edge state machine (epoll-semantics.md section 1).
//!
//! * `ep_poll_callback` ([`Kernel::ep_callback`]) runs on every wakeup the watched object
//!   issues. It drops the wakeup when the item is disarmed (ONESHOT fired; this also drops
//!   HUP and ERR) or when the wakeup's key does not meet the requested mask, appends the
//!   item at the tail of the ready list unless it is already linked, and wakes one waiter.
//! * `ep_send_events` ([`Kernel::ep_send_events`]) re-polls each queued item, drops it when
//!   nothing requested holds any more, reports `mask & (requested|ERR|HUP)`, re-appends LT
//!   items at the tail, leaves the items beyond `max_events` at the head, disarms ONESHOT.
//! * ADD and MOD poll at once (`ep_insert`, `ep_modify`) and queue the item if it is ready.

use std::collections::VecDeque;

use super::coverage::{hit, Case};
use super::fdtable::Obj;
use super::{EdgeModel, KResult, Kernel};

/// `EPOLLIN`.
pub(super) const IN: u32 = libc::EPOLLIN as u32;
/// `EPOLLPRI`.
pub(super) const PRI: u32 = libc::EPOLLPRI as u32;
/// `EPOLLOUT`.
pub(super) const OUT: u32 = libc::EPOLLOUT as u32;
/// `EPOLLERR`.
pub(super) const ERR: u32 = libc::EPOLLERR as u32;
/// `EPOLLHUP`.
pub(super) const HUP: u32 = libc::EPOLLHUP as u32;
/// `EPOLLRDHUP`.
pub(super) const RDHUP: u32 = libc::EPOLLRDHUP as u32;
/// `EPOLLET`.
pub(super) const ET: u32 = libc::EPOLLET as u32;
/// `EPOLLONESHOT`.
pub(super) const ONESHOT: u32 = libc::EPOLLONESHOT as u32;
/// `EPOLLEXCLUSIVE`.
pub(super) const EXCLUSIVE: u32 = libc::EPOLLEXCLUSIVE as u32;
/// `EPOLLWAKEUP`.
const WAKEUP: u32 = libc::EPOLLWAKEUP as u32;
/// `EP_PRIVATE_BITS`: the mode bits a ONESHOT disarm keeps.
const PRIVATE: u32 = WAKEUP | ONESHOT | ET | EXCLUSIVE;
/// `EPOLLEXCLUSIVE_OK_BITS`: the only bits allowed next to EXCLUSIVE.
const EXCLUSIVE_OK: u32 = IN | OUT | ERR | HUP | WAKEUP | ET | EXCLUSIVE;
/// The key of a wakeup that names no condition (`wake_up_interruptible_all` from
/// `sk_state_change`, pipe release): it passes every registration's key filter.
pub(super) const KEY_ALL: u32 = 0;
/// `EP_MAX_NESTS`: how deep epoll instances may watch each other.
const NESTS_MAX: usize = 4;

/// One entry on a file's wait queue: the item `item` of instance `ep`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) struct Watcher {
    pub(super) ep: u32,
    pub(super) item: u32,
    /// Registered with EPOLLEXCLUSIVE: the wakeup stops at the first such entry whose
    /// instance had a waiter.
    pub(super) exclusive: bool,
}

/// An `epitem`: one registration.
#[derive(Clone, Debug)]
pub(super) struct Item {
    /// The open file description watched.
    pub(super) file: u32,
    /// The descriptor number it was added under (half of the key).
    pub(super) fd: i32,
    /// Requested conditions (ERR and HUP added by ADD/MOD) and mode bits; only the mode bits
    /// remain after a ONESHOT report.
    pub(super) events: u32,
    /// The user data returned with every event.
    pub(super) data: u64,
    /// Linked on the ready list.
    pub(super) on_list: bool,
    /// The slot holds a registration (free slots are reused).
    pub(super) live: bool,
}

impl Item {
    /// Disarmed: a ONESHOT item that reported and was not re-armed by MOD.
    pub(super) fn disarmed(&self) -> bool {
        self.events & !PRIVATE == 0
    }
}

/// An epoll instance (`struct eventpoll`).
#[derive(Debug)]
pub(super) struct Ep {
    /// The open file description of the instance itself.
    pub(super) file: u32,
    /// Registrations (slots; `live` says which hold one).
    pub(super) items: Vec<Item>,
    free_items: Vec<u32>,
    /// The ready list (`rdllist`), FIFO by first wakeup.
    pub(super) ready: VecDeque<u32>,
    /// Threads blocked in `epoll_wait`, most recent last (woken from the end: LIFO).
    pub(super) waiters: Vec<u32>,
}

impl Kernel {
    pub(super) fn ep(&self, ep: u32) -> &Ep {
        self.eps[ep as usize].as_ref().expect("live epoll")
    }

    pub(super) fn ep_mut(&mut self, ep: u32) -> &mut Ep {
        self.eps[ep as usize].as_mut().expect("live epoll")
    }

    /// The instance behind `epfd`: EBADF if closed, EINVAL if not an epoll file.
    pub(super) fn ep_of(&self, epfd: i32) -> KResult<u32> {
        match self.fd_obj(epfd)? {
            Obj::Epoll(ep) => Ok(ep),
            _ => Err(libc::EINVAL),
        }
    }

    pub(super) fn ep_create(&mut self) -> KResult<i32> {
        self.fd_room(1)?;
        let ep = Ep {
            file: u32::MAX,
            items: Vec::new(),
            free_items: Vec::new(),
            ready: VecDeque::new(),
            waiters: Vec::new(),
        };
        let id = match self.free_eps.pop() {
            Some(id) => {
                self.eps[id as usize] = Some(ep);
                id
            }
            None => {
                self.eps.push(Some(ep));
                (self.eps.len() - 1) as u32
            }
        };
        let file = self.file_new(Obj::Epoll(id));
        self.ep_mut(id).file = file;
        self.fd_install(file)
    }

    /// `do_epoll_ctl`, with its checks in the kernel's order: EBADF (epfd, then fd), EPERM
    /// (no `->poll`; every simulated file can poll), EINVAL (same file, not an epoll file,
    /// EXCLUSIVE rules), ELOOP, then EEXIST / ENOENT, and EINVAL for a MOD of an EXCLUSIVE
    /// item.
    pub(super) fn ep_ctl(
        &mut self,
        epfd: i32,
        op: i32,
        fd: i32,
        events: u32,
        data: u64,
    ) -> KResult<()> {
        let ep_file = self.fd_file(epfd)?;
        let target = self.fd_file(fd)?;
        let has_event = op == libc::EPOLL_CTL_ADD || op == libc::EPOLL_CTL_MOD;
        // Without CAP_BLOCK_SUSPEND the kernel silently clears EPOLLWAKEUP; the simulated
        // process is root, so the bit stays (it changes nothing here).
        let ep = match self.file(ep_file).obj {
            Obj::Epoll(ep) if ep_file != target => ep,
            _ => return Err(libc::EINVAL),
        };
        let target_is_epoll = matches!(self.file(target).obj, Obj::Epoll(_));
        if has_event && events & EXCLUSIVE != 0 {
            if op == libc::EPOLL_CTL_MOD {
                return Err(libc::EINVAL);
            }
            if target_is_epoll || events & !EXCLUSIVE_OK != 0 {
                return Err(libc::EINVAL);
            }
        }
        if op == libc::EPOLL_CTL_ADD && target_is_epoll && self.ep_would_loop(ep, target) {
            return Err(libc::ELOOP);
        }
        let found = self.ep_find(ep, target, fd);
        match (op, found) {
            (libc::EPOLL_CTL_ADD, None) => {
                self.ep_insert(ep, target, fd, events | ERR | HUP, data);
                Ok(())
            }
            (libc::EPOLL_CTL_ADD, Some(_)) => Err(libc::EEXIST),
            (libc::EPOLL_CTL_DEL, Some(item)) => {
                self.ep_remove(ep, item);
                Ok(())
            }
            (libc::EPOLL_CTL_MOD, Some(item)) => {
                if self.ep(ep).items[item as usize].events & EXCLUSIVE != 0 {
                    return Err(libc::EINVAL);
                }
                self.ep_modify(ep, item, events | ERR | HUP, data);
                Ok(())
            }
            (libc::EPOLL_CTL_DEL | libc::EPOLL_CTL_MOD, None) => Err(libc::ENOENT),
            _ => Err(libc::EINVAL),
        }
    }

    /// `ep_find`: the item keyed `(target, fd)` in `ep`, found through the target's wait
    /// queue (usually one or two entries long).
    fn ep_find(&self, ep: u32, target: u32, fd: i32) -> Option<u32> {
        let e = self.ep(ep);
        self.file(target)
            .watchers
            .iter()
            .find(|w| w.ep == ep && e.items[w.item as usize].fd == fd)
            .map(|w| w.item)
    }

    /// Whether adding the epoll file `target` to `ep` would close a cycle or nest deeper
    /// than `EP_MAX_NESTS` (`ep_loop_check`).
    fn ep_would_loop(&self, ep: u32, target: u32) -> bool {
        let Obj::Epoll(inner) = self.file(target).obj else {
            return false;
        };
        // Depth-first over the instances `inner` watches, bounded by the nesting limit.
        let mut stack = vec![(inner, 1usize)];
        while let Some((at, depth)) = stack.pop() {
            if at == ep || depth > NESTS_MAX {
                return true;
            }
            for item in self.ep(at).items.iter().filter(|i| i.live) {
                if let Obj::Epoll(next) = self.file(item.file).obj {
                    stack.push((next, depth + 1));
                }
            }
        }
        false
    }

    /// `ep_insert`: hook the item on the target's wait queue, poll it at once, and queue it
    /// if it is ready.
    fn ep_insert(&mut self, ep: u32, target: u32, fd: i32, events: u32, data: u64) {
        self.structure_changed();
        let item = Item {
            file: target,
            fd,
            events,
            data,
            on_list: false,
            live: true,
        };
        let e = self.ep_mut(ep);
        let id = match e.free_items.pop() {
            Some(id) => {
                e.items[id as usize] = item;
                id
            }
            None => {
                e.items.push(item);
                (e.items.len() - 1) as u32
            }
        };
        let exclusive = events & EXCLUSIVE != 0;
        let watcher = Watcher {
            ep,
            item: id,
            exclusive,
        };
        let watchers = &mut self.file_mut(target).watchers;
        if exclusive {
            watchers.push(watcher);
        } else {
            watchers.insert(0, watcher);
        }
        self.ep_poll_and_queue(ep, id);
    }

    /// `ep_modify`: new mask and data, then the same immediate poll as ADD (which is why a
    /// MOD re-reports a still-ready ET item, and re-arms a ONESHOT one).
    fn ep_modify(&mut self, ep: u32, item: u32, events: u32, data: u64) {
        let it = &self.ep(ep).items[item as usize];
        let was_disarmed = it.disarmed();
        if self.mask_of(it.file) & events != 0 {
            if was_disarmed {
                hit(Case::OneshotRearmWithData);
            }
            if events & ET != 0 {
                hit(Case::ModRearmUnderEt);
            }
        }
        let it = &mut self.ep_mut(ep).items[item as usize];
        it.events = events;
        it.data = data;
        self.ep_poll_and_queue(ep, item);
    }

    fn ep_poll_and_queue(&mut self, ep: u32, item: u32) {
        let it = &self.ep(ep).items[item as usize];
        let (file, events) = (it.file, it.events);
        let revents = self.poll_file(file) & events;
        if revents != 0 && !self.ep(ep).items[item as usize].on_list {
            self.ep_link(ep, item);
            self.ep_wake_one(ep);
            self.ep_wake_outer(ep);
        }
    }

    /// `ep_remove` for EPOLL_CTL_DEL: unhook from the target and unlink from the ready list.
    fn ep_remove(&mut self, ep: u32, item: u32) {
        let file = self.ep(ep).items[item as usize].file;
        let watchers = &mut self.file_mut(file).watchers;
        if let Some(at) = watchers.iter().position(|w| w.ep == ep && w.item == item) {
            watchers.remove(at);
        }
        self.ep_item_drop(ep, item);
    }

    /// Frees an item slot; the caller has unhooked it from its target.
    pub(super) fn ep_item_drop(&mut self, ep: u32, item: u32) {
        self.structure_changed();
        let e = self.ep_mut(ep);
        let it = &mut e.items[item as usize];
        debug_assert!(it.live);
        it.live = false;
        if it.on_list {
            it.on_list = false;
            if let Some(at) = e.ready.iter().position(|&i| i == item) {
                e.ready.remove(at);
            }
        }
        e.free_items.push(item);
    }

    /// The epoll file's last descriptor closed: every item leaves its target's wait queue.
    pub(super) fn ep_release(&mut self, ep: u32) {
        self.structure_changed();
        let items: Vec<(u32, u32)> = self
            .ep(ep)
            .items
            .iter()
            .enumerate()
            .filter(|(_, i)| i.live)
            .map(|(id, i)| (id as u32, i.file))
            .collect();
        for (item, file) in items {
            let watchers = &mut self.file_mut(file).watchers;
            if let Some(at) = watchers.iter().position(|w| w.ep == ep && w.item == item) {
                watchers.remove(at);
            }
        }
        self.eps[ep as usize] = None;
        self.free_eps.push(ep);
    }

    fn ep_link(&mut self, ep: u32, item: u32) {
        let e = self.ep_mut(ep);
        e.items[item as usize].on_list = true;
        e.ready.push_back(item);
    }

    /// `wake_up(&ep->wq)`: the waiters queue exclusively at the head, so the most recent one
    /// wakes, and only one.
    fn ep_wake_one(&mut self, ep: u32) {
        if let Some(tid) = self.ep_mut(ep).waiters.pop() {
            self.woken.push(tid);
        }
    }

    /// `ep_poll_safewake`: an instance watched by other instances wakes them with IN.
    fn ep_wake_outer(&mut self, ep: u32) {
        let file = self.ep(ep).file;
        if !self.file(file).watchers.is_empty() {
            self.wake(file, IN);
        }
    }

    /// The object behind `file` issued a wakeup with `key` (the wait-queue walk of
    /// `__wake_up_common`): every non-exclusive entry runs; the exclusive entries run in
    /// order until one reports that it woke a waiter.
    ///
    /// Under `EdgeModel::Strict` the key is ignored: the file's mask is recomputed and only
    /// items whose requested mask went from empty to non-empty are queued.
    pub(super) fn wake(&mut self, file: u32, key: u32) {
        if self.cfg.edge == EdgeModel::Strict {
            self.strict_refresh(file);
            return;
        }
        self.wake_watchers(file, key);
    }

    fn wake_watchers(&mut self, file: u32, key: u32) {
        let mut at = 0;
        while at < self.file(file).watchers.len() {
            let w = self.file(file).watchers[at];
            at += 1;
            let woke = self.ep_callback(w.ep, w.item, key);
            if w.exclusive && woke {
                break;
            }
        }
    }

    /// The rest of a short read arrives: the wakeup a data arrival gives (`sk_data_ready`),
    /// and under the strict model a rise of IN, as the queue the read had emptied fills.
    pub(super) fn rest_arrives(&mut self, file: u32) {
        if self.cfg.edge == EdgeModel::Strict {
            self.file_mut(file).strict_mask &= !IN;
        }
        self.wake(file, IN | PRI);
    }

    /// After an operation that changed `file`'s state without a wakeup of its own (a read
    /// draining it, a write filling it, an accept): only the strict model needs to know, to
    /// keep its "mask before" current.
    pub(super) fn touch(&mut self, file: u32) {
        if self.cfg.edge == EdgeModel::Strict {
            self.strict_refresh(file);
        }
    }

    /// The strict model: queue only when a requested condition rises (0 -> 1 of a bit of
    /// `mask & requested`). For a registration with one condition this is the 0 -> non-0
    /// transition of `mask & requested`; for `IN|OUT|ET` it still gives an IN edge while
    /// the socket stays writable, which the whole-mask reading would never give (every
    /// correct `IN|OUT|ET` reactor, Go's netpoller included, would stall under it).
    /// A new bit next to an old one (RDHUP after IN) is therefore an edge (P11).
    fn strict_refresh(&mut self, file: u32) {
        if self.files.get(file as usize).is_none_or(|f| f.is_none()) {
            return;
        }
        let after = self.mask_of(file);
        let before = std::mem::replace(&mut self.file_mut(file).strict_mask, after);
        if before == after {
            return;
        }
        let mut at = 0;
        while at < self.file(file).watchers.len() {
            let w = self.file(file).watchers[at];
            at += 1;
            let requested = self.ep(w.ep).items[w.item as usize].events;
            if after & !before & requested != 0 {
                let woke = self.ep_callback(w.ep, w.item, KEY_ALL);
                if w.exclusive && woke {
                    break;
                }
            }
        }
    }

    /// `ep_poll_callback`. Returns the `ewake` value: whether an exclusive entry counts as
    /// having woken someone.
    pub(super) fn ep_callback(&mut self, ep: u32, item: u32, key: u32) -> bool {
        let it = &self.ep(ep).items[item as usize];
        let events = it.events;
        // A disarmed ONESHOT item hears nothing, not even HUP or ERR.
        if it.disarmed() {
            return false;
        }
        // The key filter: a wakeup for conditions the item did not ask for is dropped (an IN
        // wakeup on an OUT-only registration). A key of 0 passes.
        if key != KEY_ALL && key & events == 0 {
            return false;
        }
        if it.on_list {
            hit(Case::ArrivalWhileQueued);
        } else {
            self.ep_link(ep, item);
        }
        let mut ewake = events & EXCLUSIVE == 0;
        if !self.ep(ep).waiters.is_empty() {
            if events & EXCLUSIVE != 0 {
                ewake = match key & (IN | OUT) {
                    IN => events & IN != 0,
                    OUT => events & OUT != 0,
                    0 => true,
                    _ => false,
                };
            }
            // Linux wakes a waiter on every callback that passes the filters, whether or not
            // the item was already linked.
            self.ep_wake_one(ep);
        }
        self.ep_wake_outer(ep);
        ewake
    }

    /// `ep_send_events`: one scan of the ready list.
    pub(super) fn ep_send_events(
        &mut self,
        epfd: i32,
        max_events: usize,
        out: &mut Vec<(u32, u64)>,
    ) -> KResult<usize> {
        let ep = self.ep_of(epfd)?;
        if max_events == 0 || max_events > i32::MAX as usize {
            return Err(libc::EINVAL);
        }
        // Splice the ready list out; LT items go back onto the (now empty) live list.
        let mut tx = std::mem::take(&mut self.scratch_ready);
        std::mem::swap(&mut tx, &mut self.ep_mut(ep).ready);
        let mut reported = 0;
        while reported < max_events {
            let Some(item) = tx.pop_front() else { break };
            let it = &mut self.ep_mut(ep).items[item as usize];
            it.on_list = false;
            let (file, events, data) = (it.file, it.events, it.data);
            let revents = self.poll_file(file) & events;
            if revents == 0 {
                hit(Case::StaleReadinessDropped);
                continue;
            }
            out.push((revents, data));
            reported += 1;
            let it = &mut self.ep_mut(ep).items[item as usize];
            if events & ONESHOT != 0 {
                it.events &= PRIVATE;
            } else if events & ET == 0 {
                self.ep_link(ep, item);
            }
        }
        if reported < max_events && self.chance(self.cfg.faults.spurious_ready) {
            reported += self.ep_report_spurious(ep, out);
        }
        // `ep_done_scan`: the items not reached stay at the head, before the LT re-queues.
        if !tx.is_empty() {
            hit(Case::MaxeventsCarryOver);
        }
        let e = self.ep_mut(ep);
        tx.append(&mut e.ready);
        std::mem::swap(&mut tx, &mut e.ready);
        self.scratch_ready = tx;
        if !self.ep(ep).ready.is_empty() {
            // The LT cascade: another waiter gets to look at what is left. On 6.x
            // `ep_done_scan` no longer wakes the instances watching this one (measured: an
            // ET outer instance is not re-queued by the inner instance's LT re-queue).
            self.ep_wake_one(ep);
        }
        Ok(reported)
    }

    /// The `spurious_ready` fault: reports one armed item, drawn uniformly, with the
    /// directions it asked for, although its file may have nothing for them. Linux returns
    /// such events when readiness was consumed between the wakeup and the caller's read (by
    /// another thread, or by the caller's own earlier read), and mio documents that any event
    /// may be spurious; code that trusts an event instead of the call's result breaks on
    /// them. The report behaves as a real one: a ONESHOT item is disarmed by it. Returns the
    /// number of events added (0 or 1).
    fn ep_report_spurious(&mut self, ep: u32, out: &mut Vec<(u32, u64)>) -> usize {
        const DIRECTIONS: u32 = IN | OUT;
        let eligible = |it: &Item| {
            it.live && it.events & DIRECTIONS != 0 && !out.iter().any(|&(_, d)| d == it.data)
        };
        let count = self.ep(ep).items.iter().filter(|it| eligible(it)).count();
        if count == 0 {
            return 0;
        }
        let pick = self.draw_upto(count as u64 - 1) as usize;
        let (item, _) = self
            .ep(ep)
            .items
            .iter()
            .enumerate()
            .filter(|(_, it)| eligible(it))
            .nth(pick)
            .expect("counted above");
        let it = &mut self.ep_mut(ep).items[item];
        out.push((it.events & DIRECTIONS, it.data));
        if it.events & ONESHOT != 0 {
            it.events &= PRIVATE;
        }
        1
    }

    /// The poll mask of an epoll file, without side effects: IN if an item on its ready list
    /// would report something.
    pub(super) fn ep_mask(&self, ep: u32) -> u32 {
        let e = self.ep(ep);
        for &item in &e.ready {
            let it = &e.items[item as usize];
            if self.mask_of(it.file) & it.events != 0 {
                return IN;
            }
        }
        0
    }

    /// `ep_eventpoll_poll`: like [`Kernel::ep_mask`], but items found stale on the way are
    /// unlinked, as `__ep_eventpoll_poll` does.
    pub(super) fn ep_poll_self(&mut self, ep: u32) -> u32 {
        loop {
            let Some(&item) = self.ep(ep).ready.front() else {
                return 0;
            };
            let it = &self.ep(ep).items[item as usize];
            let (file, events) = (it.file, it.events);
            if self.poll_file(file) & events != 0 {
                return IN;
            }
            let e = self.ep_mut(ep);
            e.ready.pop_front();
            e.items[item as usize].on_list = false;
        }
    }
}
