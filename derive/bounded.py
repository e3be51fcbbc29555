"""Verifying documents under limits that really stop SymPy, several at once.

Each document is checked in a child process (forked, so nothing is imported
again) with a cap on its address space.  It sends each claim's result as soon
as it has it; a claim that takes longer than the time limit, or that exhausts
the memory, ends the child: that claim is UNDECIDED with the reason, and a
fresh child goes on with the claims after it.  A signal inside the process
could not interrupt a long operation in C (a huge integer power); killing the
process always works.

Up to ``jobs`` children run at once.  Results come back in input order, and
what a child computes does not depend on what runs beside it, so the verdicts
are the same for any ``jobs``.  A document with fewer documents than jobs
beside it is split by n into shares (the all-n proofs, normal forms and closed
form in the first), and jobs left over check one share together: the parent
hands each of its children one claim at a time, so they finish together
whatever the claims cost, and it always knows which claim a child it stops
was on.  The verdicts are put back together in claim and n order.

The whole run is bounded too (``total_time_limit``): past it the children are
stopped and every claim not yet decided is UNDECIDED with the reason, keeping
everything decided before.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import pickle
import resource
import time
from multiprocessing.connection import wait

from .cache import Cache, dumps
from .cache import key as cache_key
from .checking import DEFAULT_NS, VerifierError, verify_claims
from .claims import Document
from .limits import CLAIM_MEMORY_BYTES, CLAIM_TIME_LIMIT_S
from .results import UNDECIDED, AllNStep, ClaimResult, DocumentResult, NVerdict
from .sizes import Point, SizeError

# The reason given to every claim left when the run's budget is spent.
BUDGET_REASON = "run time budget: more than {:g} s for the whole run (--total-time-limit)"


def _address_space() -> int:
    """This process's current virtual size in bytes (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _send(conn, message) -> None:
    # Pickled as trees (cache.dumps): SymPy's own pickles rebuild each Add and Mul
    # by evaluating it again, and unpickling results was most of the parent's time.
    conn.send_bytes(dumps(message))


# What the parent hands a child besides a claim's position: derive the closed
# form (always the last item), or stop.
CLOSED_FORM = "closed form"


def _child(conn, document: Document, ns, options: dict, memory: int, parent_end) -> None:
    # The parent's end of this pipe, inherited by the fork: closed, so that a parent
    # that dies is seen as the end of the pipe, and this child does not wait forever.
    parent_end.close()
    # The cap is on top of what the fork already maps (imported libraries).
    limit = _address_space() + memory
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    last = [None]

    def handed_out():
        # The parent hands out one item at a time, so it always knows what a
        # child it stops was on.
        while isinstance(item := conn.recv(), int):
            yield document.claims[item]
        last[0] = item

    try:
        for result in verify_claims(document, ns, claims=handed_out(), **options):
            _send(conn, ("claim", result))
        if last[0] == CLOSED_FORM:
            from .derivation import DerivationError, derive_closed_form

            try:
                _send(conn, ("derivation", derive_closed_form(document)))
            except DerivationError as exc:
                _send(conn, ("derivation", str(exc)))
        _send(conn, ("done", None))
    except VerifierError as exc:
        _send(conn, ("error", (getattr(exc, "n", None), str(exc))))
    except MemoryError:
        _send(conn, ("memory", None))
    except RecursionError:
        _send(conn, ("crash", "the expression is nested too deeply to process"))
    except Exception as exc:  # a bug must not pass for a verdict: the claim is undecided
        _send(conn, ("crash", f"internal error: {type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def _undecided(claim, ns, all_n: bool, reason: str) -> ClaimResult:
    verdicts = tuple(NVerdict(n, UNDECIDED, reason) for n in ns)
    proofs = ()
    if all_n:
        proofs = tuple(
            AllNStep(case.label, k + 1, None, reason)
            for case in claim.cases
            for k in range(case.steps)
        )
    return ClaimResult(claim, verdicts, proofs)


@dataclasses.dataclass
class _Share:
    """A document's claims at some of its n, handed out one at a time to the
    children that check them (so that a share's children finish together)."""

    index: int  # the document's position in the input
    document: Document
    ns: tuple[int, ...]
    options: dict
    closed_form: bool  # also derive the document's closed form, after its claims
    pending: list = dataclasses.field(default_factory=list)  # positions not handed out
    done: dict = dataclasses.field(default_factory=dict)  # position -> ClaimResult
    derivation: object = None  # a derivation.Derivation, or why there is none
    # VerifierErrors (the document is malformed): (position, n, message) each; the
    # lowest is the one reported, the one a single process checking in order meets.
    errors: list = dataclasses.field(default_factory=list)
    limited: bool = False  # some verdict was set by a limit, not by the check

    def __post_init__(self):
        # Last claims first: a derivation's later claims build on the earlier
        # ones and are the heaviest, so the short ones are left for the end.
        self.pending = list(range(len(self.document.claims)))[::-1]
        self.closed_form = self.closed_form and bool(self.document.closed_form)

    def take(self):
        """The next item to hand out: a claim's position, CLOSED_FORM, or None."""
        if self.pending:
            return self.pending.pop(0)
        if self.closed_form:
            self.closed_form = False
            return CLOSED_FORM
        return None

    @property
    def exhausted(self) -> bool:
        return not self.pending and not self.closed_form

    def failed(self, position: int, n, message: str) -> None:
        """A claim's sides cannot be read: only the claims before it are still of use
        (one of them may fail to be read too, and its error is the one to report)."""
        self.errors.append((position, -1 if n is None else n, message))
        self.pending = [k for k in self.pending if k < position]
        self.closed_form = False

    def give_up(self, item, reason: str) -> None:
        """The item (a position, or CLOSED_FORM) is undecided, for reason."""
        self.limited = True
        if item == CLOSED_FORM:
            self.closed_form, self.derivation = False, f"closed form: {reason}"
        else:
            claim = self.document.claims[item]
            self.done[item] = _undecided(claim, self.ns, self.options.get("all_n"), reason)

    def cost(self) -> int:
        return len(self.ns) * sum(len(t) for c in self.document.claims for t in _texts(c))


@dataclasses.dataclass
class _Part:
    """One child checking items of a share."""

    share: _Share
    current: object = None  # what the child is on: a position, CLOSED_FORM or None
    child: object = None
    conn: object = None
    deadline: float = 0.0

    @property
    def document(self) -> Document:
        return self.share.document


def _cost(n) -> int:
    """About what a check at n costs: n² (several sizes: the product of their values, squared)."""
    if isinstance(n, Point):
        n = math.prod(v for _, v in n.values)
    return n * n


def split_ns(ns, parts: int) -> list[tuple[int, ...]]:
    """ns in at most ``parts`` groups of about equal cost (a check at n costs about n²)."""
    items = list(ns)
    groups: list[list] = [[] for _ in range(max(1, min(parts, len(items))))]
    loads = [0] * len(groups)
    for n in sorted(items, key=lambda v: (-_cost(v), v)):
        k = loads.index(min(loads))
        groups[k].append(n)
        loads[k] += _cost(n)
    return [tuple(sorted(g)) for g in groups]


class _Run:
    def __init__(self, parts, jobs, time_limit, memory, total_time_limit):
        self.waiting = list(parts)
        self.running: list[_Part] = []
        self.jobs = jobs
        self.time_limit = time_limit
        self.memory = memory
        self.end = None if total_time_limit is None else time.monotonic() + total_time_limit
        self.total_time_limit = total_time_limit
        self.context = multiprocessing.get_context("fork")

    def start(self, part: _Part, item) -> None:
        share = part.share
        here, there = self.context.Pipe(duplex=True)
        args = (there, share.document, share.ns, share.options, self.memory, here)
        part.child = self.context.Process(target=_child, args=args)
        part.child.start()
        there.close()
        part.conn = here
        self.hand(part, item)

    def hand(self, part: _Part, item) -> None:
        part.current = item
        part.deadline = time.monotonic() + self.time_limit
        try:
            part.conn.send(item)
        except OSError:  # the child is gone; receive() sees it
            pass

    def stop(self, part: _Part, reason: str | None) -> None:
        """End the part's child; the item it was on gets ``reason`` (None: it finished)."""
        if part.child.is_alive():
            part.child.kill()
        part.child.join()
        part.child.close()  # its pipes and sentinel, not kept until the run ends
        part.conn.close()
        self.running.remove(part)
        item, part.current = part.current, None
        if reason is None or item is None:
            return
        part.share.give_up(item, reason)
        if not part.share.exhausted:
            self.waiting.insert(0, part)

    def receive(self, part: _Part) -> None:
        share = part.share
        try:
            kind, payload = pickle.loads(part.conn.recv_bytes())
        except EOFError:
            self.stop(part, "the check stopped (out of memory, or killed)")
            return
        if kind == "claim":
            share.done[part.current] = payload
            self.hand(part, share.take())
        elif kind == "derivation":
            share.derivation, part.current = payload, None
        elif kind == "error":
            position, part.current = part.current, None
            share.failed(position, *payload)
            for other in [p for p in self.running if p.share is share]:
                # a child past the failed claim checks what no longer matters
                if other is part or not (
                    isinstance(other.current, int) and other.current < position
                ):
                    other.current = None
                    self.stop(other, None)
                    if other is part and not share.exhausted:
                        self.waiting.insert(0, part)
        elif kind == "memory":
            self.stop(part, f"memory limit: more than {self.memory >> 20} MiB")
        elif kind == "crash":
            self.stop(part, payload)
        else:  # "done"
            part.current = None
            self.stop(part, None)

    def run(self) -> None:
        try:
            while self.waiting or self.running:
                now = time.monotonic()
                if self.end is not None and now >= self.end:
                    self.out_of_budget()
                    return
                while self.waiting and len(self.running) < self.jobs:
                    part = self.waiting.pop(0)
                    item = part.share.take()
                    if item is not None:  # a share's other children took everything
                        self.start(part, item)
                        self.running.append(part)
                if not self.running:
                    continue
                deadlines = [p.deadline for p in self.running]
                if self.end is not None:
                    deadlines.append(self.end)
                ready = wait([p.conn for p in self.running], max(0.0, min(deadlines) - now))
                for part in list(self.running):
                    # (a part an error in its share stopped is no longer running)
                    if part.conn in ready and any(p is part for p in self.running):
                        self.receive(part)
                now = time.monotonic()
                for part in list(self.running):
                    if part.deadline <= now and part.conn not in ready:
                        self.stop(part, f"time limit: more than {self.time_limit:g} s")
        finally:
            for part in list(self.running):  # an interrupt: no child outlives the run
                part.current = None
                self.stop(part, None)

    def out_of_budget(self) -> None:
        reason = BUDGET_REASON.format(self.total_time_limit)
        shares = {id(p.share): p.share for p in self.running + self.waiting}
        for part in list(self.running):
            item, part.current = part.current, None
            self.stop(part, None)
            if item is not None:
                part.share.give_up(item, reason)
        for share in shares.values():
            while (item := share.take()) is not None:
                share.give_up(item, reason)
        self.waiting = []


def _merge(document: Document, ns, all_n: bool, shares: list[_Share]) -> DocumentResult:
    """One document's result from its shares (by n), or the VerifierError it raised."""
    errors = [e for share in shares for e in share.errors]
    if errors:
        raise VerifierError(min(errors)[2])
    claims = []
    for k, claim in enumerate(document.claims):
        pieces = [share.done[k] for share in shares]
        verdicts = sorted((v for p in pieces for v in p.verdicts), key=lambda v: v.n)
        first = pieces[0]
        claims.append(dataclasses.replace(first, claim=claim, verdicts=tuple(verdicts)))
    return DocumentResult(
        document,
        tuple(ns),
        tuple(claims),
        all_n=all_n,
        derivation=shares[0].derivation,
        limited=any(s.limited for s in shares),
    )


def verify_many(
    documents,
    ns=DEFAULT_NS,
    *,
    jobs: int = 1,
    time_limit: float = CLAIM_TIME_LIMIT_S,
    memory: int = CLAIM_MEMORY_BYTES,
    total_time_limit: float | None = None,
    closed_forms: bool = False,
    cache: Cache | None = None,
    **options,
) -> list[DocumentResult | VerifierError]:
    """Each document's result, in input order (a VerifierError in place of the
    result of a document that cannot be read): as verify.verify_document, with
    each claim bounded in time and memory, up to ``jobs`` documents at once,
    and the whole run bounded by ``total_time_limit`` seconds.

    ns: the n of a one-size document, and the values of every size of one with several
    (None: each one's default, Document.points); options ``sizes`` ({name: values}, as
    --sizes) and ``several_ns`` (the values of each size of a document with several
    sizes, where they differ from ns) refine that.
    closed_forms: also derive each document's closed form (DocumentResult.derivation).
    cache: where results are remembered (cache.Cache); a result that a limit
    decided is not stored."""
    documents = list(documents)
    per_size = options.pop("sizes", None)
    several_ns = options.pop("several_ns", ns)
    grids: list = []  # each document's points (Document.points), or why it has none
    for doc in documents:
        values = several_ns if len(doc.size_names) > 1 else ns
        try:
            grids.append(doc.points(None if values is None else tuple(values), per_size))
        except SizeError as exc:
            grids.append(VerifierError(str(exc)))
    all_n = bool(options.get("all_n"))
    jobs = max(1, int(jobs))
    keys = [
        result_key(doc, grid, options, closed_forms)
        if cache and doc.digest and not isinstance(grid, VerifierError)
        else None
        for doc, grid in zip(documents, grids, strict=True)
    ]
    cached = [
        grid if isinstance(grid, VerifierError) else cache.get(k) if k else None
        for k, grid in zip(keys, grids, strict=True)
    ]
    todo = [doc for doc, hit in zip(documents, cached, strict=True) if hit is None]
    split = max(1, jobs // max(1, len(todo)))
    by_document: list[list[_Share]] = []
    parts: list[_Part] = []
    for index, doc in enumerate(documents):
        if cached[index] is not None:
            by_document.append([])
            continue
        ns = grids[index]
        groups = split_ns(ns, split) if ns else [()]
        shares = []
        for k, group in enumerate(groups):
            # The all-n proofs and the normal forms once per claim, in the first
            # group of n; the closed form once, there too.
            extra = {} if k == 0 else {"all_n": False, "normal_forms": False}
            share = _Share(index, doc, group, {**options, **extra}, closed_forms and k == 0)
            shares.append(share)
            # Jobs left over once the n are shared out check the same share: the
            # seed file at one n.
            parts += [_Part(share) for _ in range(max(1, split // len(groups)))]
        by_document.append(shares)
    # Largest first, so that the last document to start is a short one.
    parts.sort(key=lambda p: -p.share.cost())
    _Run(parts, jobs, time_limit, memory, total_time_limit).run()
    out: list[DocumentResult | VerifierError] = []
    for doc, shares, hit, k, ns in zip(documents, by_document, cached, keys, grids, strict=True):
        if hit is not None:
            out.append(hit)
            continue
        try:
            result = _merge(doc, ns, all_n, shares)
        except VerifierError as exc:
            out.append(exc)
            continue
        if k is not None and not result.limited:
            cache.put(k, result)
        out.append(result)
    return out


def result_key(document: Document, ns, options: dict, closed_forms: bool) -> str:
    """The cache entry of a document's result: its bytes and path, and every option."""
    return cache_key(
        "result",
        document.digest,
        document.path,
        tuple(ns),
        tuple(sorted(options.items())),
        bool(closed_forms),
    )


def _texts(claim):
    return [t for case in claim.cases for t in case.sides]


def verify_bounded(document: Document, ns=DEFAULT_NS, **kw) -> DocumentResult:
    """verify_many for one document; raises its VerifierError."""
    (result,) = verify_many([document], ns, **kw)
    if isinstance(result, VerifierError):
        raise result
    return result


_TASKS: list = []  # forked_map's thunks, read by the forked workers


def _run_task(k: int):
    try:
        return True, _TASKS[k]()
    except Exception as exc:  # sent back and raised there, in order
        return False, exc


def forked_map(thunks, jobs: int) -> list:
    """[t() for t in thunks], up to ``jobs`` at once in forked workers (so that the
    thunks, closures over results in this process, need no pickling); the first
    exception a thunk raised is raised here.  For trusted work (rendering the
    shipped reports): nothing here is bounded."""
    global _TASKS
    thunks = list(thunks)
    if jobs <= 1 or len(thunks) <= 1:
        return [t() for t in thunks]
    _TASKS = thunks
    try:
        with multiprocessing.get_context("fork").Pool(min(jobs, len(thunks))) as pool:
            outcomes = pool.map(_run_task, range(len(thunks)), chunksize=1)
    finally:
        _TASKS = []
    for ok, value in outcomes:
        if not ok:
            raise value
    return [value for _, value in outcomes]
