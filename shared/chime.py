"""Telling the other processes of this deployment what was just written, so that a loop
resting until then wakes at once without asking the store (issue 14).

The loops that move events along (a relay, a consumer, a dispatcher, a worker) used to find
out about new work by asking the store every few tens of milliseconds: on an idle `make up`
that was hundreds of queries a second, and on a busy one tens of milliseconds of latency
per hop. The store's change streams (shared.wakeup) are the MongoDB way to wait, but are
opt-in on the local store. A chime costs neither: after a write commits, the writer sends
the names of the collections it wrote ("db.coll") as one datagram to every process
listening in the wake folder (`RAPPORT_WAKE_DIR`, a Unix datagram socket per process), and
every Doorbell of those processes watching one of those names wakes.

A chime is only a hint: a lost or refused datagram (a process that died, a full buffer)
costs at most the caller's rest, since every loop still looks for work after its timeout.
So nothing depends on it for correctness, only for speed; a chime arriving when there is
nothing to do costs one look. Every process of a deployment shares the folder or none does
(`make up` and the local test stacks set it under the run folder; containers can share a
volume); a process that listens but whose writers do not chime would rest its long rests.

A process says which names it waits on (`want`, called by every Doorbell): beside its
socket a file `<socket>.names` lists them, and a writer sends a chime only to the processes
that want one of its names, or that list none (they hear everything, as every process did
before). Hearing every write of the deployment, the consumers' and relays' chime threads
took 7 % of their CPU in the flows bench (0.97 s of 13.7 s in 15 s, per-thread CPU), an
idle relay nearly all of its own (issue 14). A writer reads the listing again when the
folder has changed (a stat per chime), so a name wanted is heard from the next chime after
`want` returns.

A relay's chime also says how far it published (`announce(..., ends=...)`): for each
partition, the offset after the last record the broker acknowledged. A consumer woken by it
then knows the records are there without asking the broker for the partitions' end offsets
(`published_end`, shared.consumer): a round trip on every hop of every flow, and 70 % of
those asked in the flows bench found records waiting (issue 14). What a chime says is a
hint too: the consumer asks the broker when none is newer than what it acted on.
"""

from __future__ import annotations

import atexit
import errno
import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

log = logging.getLogger(__name__)
ENV = "RAPPORT_WAKE_DIR"
PEERS_TTL = 1.0  # seconds a listing of the folder is reused before it is read again
MAX_DATAGRAM = 4096
WANTED = ".names"  # beside a socket: the names its process waits on, one a line
# a line of a chime that is not a name: "<ENDS>topic<TAB>partition<TAB>end offset"
ENDS = "@"
# a listing read within this many seconds of the folder's last change is read again on the
# next chime: the folder's mtime comes from the kernel's coarse clock (a tick of a few ms),
# so a change in the same tick as the reading would leave the same mtime
SETTLE = 0.05

# one lock for every wait of the process: a ring from a chime, from this process's own
# writes or from a change stream (shared.wakeup) counts its names and wakes only the waits
# on one of them. It woke every wait of the process before (one Condition, notify_all):
# every process hears every write of the deployment, and in the flows bench a consumer
# process spent a fifth of its Python time waking loops to find the ring not theirs
# (py-spy, issue 14).
lock = threading.RLock()  # held to read or change `rings` and `waiting`
rings: Counter = Counter()  # "db.coll" -> chimes heard (or made here)
waiting: dict[str, set[threading.Condition]] = {}  # "db.coll" -> the waits on it now
# (topic, partition) -> the highest end offset a relay announced (`announce`'s ends)
published: dict[tuple[str, int], int] = {}


class _Chime:
    def __init__(self) -> None:
        self.folder: Path | None = None
        self.path: str | None = None  # this process's socket, once listening
        self.pid: int | None = None
        # the peers' sockets, each with the names it wants (None: it lists none, wants all)
        self._peers: list[tuple[str, frozenset[str] | None]] = []
        self._peers_read = 0.0
        self._folder_seen: tuple[int, int] | None = None  # (inode, mtime ns) when read
        self.wanted: set[str] = set()  # the names this process waits on (`want`)
        self.heard = 0  # chimes received (tests, and a look at what a process hears)
        self._sender: socket.socket | None = None
        self._sender_pid: int | None = None
        self._lock = threading.Lock()

    def configured(self) -> Path | None:
        value = os.environ.get(ENV, "").strip()
        return Path(value) if value else None

    def listen(self) -> bool:
        """Start this process's listener (once; again after a fork). False if the folder is
        not set or the socket cannot be bound: the caller then polls."""
        with self._lock:
            folder = self.configured()
            if folder is None:
                return False
            if self.listening() and self.folder == folder:
                return True
            try:
                # only this deployment's processes (its user) may ring them
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                path = str(folder / f"{os.getpid()}-{os.urandom(3).hex()}.sock")
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                sock.bind(path)
            except OSError as err:  # e.g. a path longer than a socket address allows
                log.warning("chime: cannot listen in %s (%s); loops poll instead", folder, err)
                return False
            self.folder, self.path, self.pid = folder, path, os.getpid()
            if self.wanted:  # named before the first listen (Doorbell), or by a fork's parent
                self._write_wanted()
            threading.Thread(target=self._receive, args=(sock,), daemon=True, name="chime").start()
            atexit.register(_forget, path)
            return True

    def listening(self) -> bool:
        """Listening in the folder configured now (a test may point it elsewhere)."""
        return (
            self.path is not None and self.pid == os.getpid() and self.folder == self.configured()
        )

    def _receive(self, sock: socket.socket) -> None:
        while True:
            try:
                data = sock.recv(MAX_DATAGRAM)
            except OSError:
                return
            self.heard += 1
            names, ends = _parse(data)
            if names or ends:
                ring(names, ends)

    def want(self, names: Iterable[str]) -> None:
        """Chimes on `names` are to reach this process (its listing written again when they
        are new to it). Listening or not: a socket bound later writes it then."""
        with self._lock:
            new = set(names) - self.wanted
            if not new:
                return
            self.wanted |= new
            if self.listening():
                self._write_wanted()

    def _write_wanted(self) -> None:
        """Write `<socket>.names` whole, then rename it into place (`_lock` held): a writer
        reads the old listing or the new one, and the rename changes the folder's mtime."""
        assert self.path is not None
        staging = f"{self.path}{WANTED}.part"
        try:
            with open(staging, "w", encoding="utf-8") as out:
                out.write("\n".join(sorted(self.wanted)) + "\n")
            os.replace(staging, self.path + WANTED)
        except OSError as err:  # without it, writers send this process everything
            log.warning("chime: cannot write %s (%s); hearing every chime", staging, err)
            _unlink(self.path + WANTED)

    def send(self, names: Iterable[str], ends: Mapping[tuple[str, int], int] | None = None) -> None:
        folder = self.configured()
        if folder is None:
            return
        names = list(names)  # read twice below: the payload, and whom it is for
        lines = names + [f"{ENDS}{t}\t{p}\t{end}" for (t, p), end in (ends or {}).items()]
        payload = "\n".join(lines).encode()[:MAX_DATAGRAM]
        with self._lock:
            if self._sender is None or self._sender_pid != os.getpid():  # (again after a fork)
                self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sender.setblocking(False)
                self._sender_pid = os.getpid()
            peers = self._peers_of(folder)
            sender = self._sender
        wanted = set(names)
        for peer, wants in peers:
            if peer == self.path or (wants is not None and wants.isdisjoint(wanted)):
                continue
            try:
                sender.sendto(payload, peer)
            except OSError as err:
                if err.errno in (errno.ECONNREFUSED, errno.ENOENT):
                    if err.errno == errno.ECONNREFUSED:
                        _forget(peer)  # a socket left by a process that died
                    with self._lock:
                        self._peers_read = 0.0  # read the folder again next time
                # EAGAIN: its buffer is full, so it has plenty to wake for already

    def _peers_of(self, folder: Path) -> list[tuple[str, frozenset[str] | None]]:
        """The sockets in the folder with the names each wants: read again after PEERS_TTL,
        or when the folder changed since (a socket bound or gone, a listing rewritten)."""
        now = time.monotonic()
        try:
            st = os.stat(folder)
        except OSError:
            return []
        seen = (st.st_ino, st.st_mtime_ns)
        if now - self._peers_read > PEERS_TTL or seen != self._folder_seen:
            try:
                self._peers = [(str(p), _wants(p)) for p in folder.glob("*.sock")]
            except OSError:
                self._peers = []
            self._peers_read = now
            # a change in the same clock tick as this reading would not move the mtime
            settled = time.time() - st.st_mtime_ns / 1e9 > SETTLE
            self._folder_seen = seen if settled else None
        return self._peers


def _parse(data: bytes) -> tuple[list[str], dict[tuple[str, int], int]]:
    """A chime's names, and the end offsets it announced (a line cut short by the datagram's
    size, or not understood, is left out)."""
    names, ends = [], {}
    for line in data.decode("utf-8", "replace").split("\n"):
        if not line.startswith(ENDS):
            if line:
                names.append(line)
            continue
        try:
            topic, partition, end = line[len(ENDS) :].split("\t")
            ends[(topic, int(partition))] = int(end)
        except ValueError:
            continue
    return names, ends


def _wants(socket_path: Path) -> frozenset[str] | None:
    """The names a peer listed beside its socket; None if it lists none (it hears all)."""
    try:
        text = Path(f"{socket_path}{WANTED}").read_text(encoding="utf-8")
    except OSError:
        return None
    return frozenset(n for n in text.split("\n") if n)


def _forget(socket_path: str) -> None:
    """Remove a socket and the listing of names beside it."""
    _unlink(socket_path)
    _unlink(socket_path + WANTED)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


_chime = _Chime()


def ring(names: Iterable[str], ends: Mapping[tuple[str, int], int] | None = None) -> None:
    """Wake this process's Doorbells watching any of `names`; `ends` (announced with them) are
    known before they wake."""
    with lock:
        for key, end in (ends or {}).items():
            if end > published.get(key, -1):
                published[key] = end
        names = list(names)
        rings.update(names)
        wake(names)


def published_end(topic: str, partition: int) -> int | None:
    """The highest end offset a relay announced for the partition (in this process or in a
    chime it heard), None if none did."""
    return published.get((topic, partition))


def wake(names: Iterable[str]) -> None:
    """Notify the waits on any of `names` (`lock` held)."""
    for name in names:
        for wait in waiting.get(name, ()):
            wait.notify()


def wait_on(names: Iterable[str], wait: threading.Condition) -> None:
    """`wait` (a Condition over `lock`, held) is to be notified of rings on `names`."""
    for name in names:
        waiting.setdefault(name, set()).add(wait)


def stop_waiting(names: Iterable[str], wait: threading.Condition) -> None:
    """Undo `wait_on` (`lock` held)."""
    for name in names:
        waits = waiting.get(name)
        if waits is not None:
            waits.discard(wait)
            if not waits:
                del waiting[name]


def announce(names: Iterable[str], ends: Mapping[tuple[str, int], int] | None = None) -> None:
    """After a commit that wrote `names` ("db.coll"): wake the loops watching them, in this
    process and in every process listening in the wake folder. `ends`: after a publish, each
    partition's offset after the last record the broker acknowledged ({(topic, partition):
    offset}), for the consumers it wakes (`published_end`)."""
    names = list(names)
    ring(names, ends)
    try:
        _chime.send(names, ends)
    except OSError as err:  # a hint only: never fail the write that announced it
        log.debug("chime: not sent (%s)", err)


def listen() -> bool:
    return _chime.listen()


def want(names: Iterable[str]) -> None:
    """This process waits on `names`: the chimes on them are to reach it (`_Chime.want`)."""
    _chime.want(names)


def listening() -> bool:
    return _chime.listening()
