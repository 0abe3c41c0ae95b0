"""Billing's command handlers. Streams: `fees` (the practice's price lists) and
`account-<client_id>` (funding, charges, invoices, credit notes, payments, refunds).

Invoice and credit-note numbers come from gap-free series per practice: the next number is
claimed by a unique document (`document_numbers`) inserted in the same transaction as the
events that use it, as scheduling claims a slot. Two invoices racing for one number cannot
both commit; the loser takes the next number; an aborted command leaves no gap."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from flask import current_app
from pymongo import DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from shared.application import CommandHandler, Outcome
from shared.domain import Conflict, DomainError, NotFound, fold
from shared.events import Event
from shared.eventstore import EventStore, Metadata, StreamAppend
from shared.web import context

from .domain import (
    Account,
    ChargeSession,
    Fees,
    IssueCreditNote,
    IssueInvoice,
    PriceList,
    RecordPayment,
    RecordRefund,
    SessionOutcome,
    SetFees,
    SetFunding,
    WaiveCharge,
    local_date,
)
from .domain.account import needs_account
from .domain.state import AccountState

NUMBERS = "document_numbers"
SERIES = {"invoice": "INV", "credit_note": "CN"}
ATTEMPTS = 20


def account_stream(client_id: str) -> str:
    return f"account-{client_id}"


@dataclass
class Charged:
    """What `charge_sessions` did: the price list's version it charged at, and each session
    it could not charge with why (a session neither here nor refused was charged, or is
    charged nothing)."""

    fees_version: int
    refused: dict[str, DomainError] = field(default_factory=dict)


class NumberTaken(Exception):
    """Another command committed this number first: take the next one."""


def ensure_indexes(store: EventStore) -> None:
    store.db[NUMBERS].create_indexes(
        [
            IndexModel([("series", 1), ("n", DESCENDING)], name="series_n"),
            IndexModel("document_id", name="document"),
        ]
    )


class Application:
    def __init__(self, store: EventStore, *, clock: Callable[[], datetime]):
        self.store, self.clock = store, clock
        self.accounts = CommandHandler(store, Account())
        self.fees = CommandHandler(store, Fees())
        self.numbers = store.db[NUMBERS]

    def today(self) -> date:
        return local_date(self.clock())

    # -- price list -------------------------------------------------------------------------
    def price_list(self) -> PriceList:
        return self.fees.state("fees")[0]

    def set_fees(self, data: dict, meta: Metadata) -> PriceList:
        return self.fees.run("fees", SetFees(data, self.today()), meta).state

    # -- accounts -----------------------------------------------------------------------------
    def account(self, client_id: str, *, until: datetime | None = None) -> list[Event]:
        return self.store.load(account_stream(client_id), until=until)

    def set_funding(self, command: SetFunding, meta: Metadata) -> Outcome:
        return self.accounts.run(account_stream(command.client_id), command, meta)

    def waive(self, client_id: str, command: WaiveCharge, meta: Metadata) -> Outcome:
        return self.accounts.run(
            account_stream(client_id), command, meta, check=lambda s: needs_account(s, client_id)
        )

    def record_payment(self, command: RecordPayment | RecordRefund, meta: Metadata) -> Outcome:
        """Money may arrive before anything is charged: it is then held as credit."""
        return self.accounts.run(account_stream(command.client_id), command, meta)

    def issue_invoice(
        self, client_id: str, invoice_id: str, make: Callable[[str], IssueInvoice], meta: Metadata
    ) -> Outcome:
        return self.numbered(client_id, "invoice", invoice_id, make, meta)

    def issue_credit_note(
        self,
        invoice_id: str,
        note_id: str,
        make: Callable[[str], IssueCreditNote],
        meta: Metadata,
    ) -> Outcome:
        client_id = self.client_of_document(invoice_id)
        return self.numbered(client_id, "credit_note", note_id, make, meta)

    def charge_session(self, session: SessionOutcome, meta: Metadata) -> list[Event]:
        """The charge (if any) for a session the diary says ended; nothing if already done."""
        schedule = self.price_list().in_force(local_date(session.starts_at))
        command = ChargeSession(session, schedule)
        return self.accounts.run(account_stream(session.client_id), command, meta).events

    def charge_sessions(self, sessions: Sequence[tuple[SessionOutcome, Metadata]]) -> Charged:
        """Several ended sessions' charges, each with its own metadata: the price list read
        once, the accounts in one query and every charge appended in one transaction (a
        client's in their order, each decided on the account after the one before), where
        `charge_session` takes five round trips of the store for each (issue 14: billing was
        a fifth of the store's commands in the flows bench, and fell behind at 40 ticks a
        second). A session whose charge the decider refuses (no price) is in `refused`, and
        the others are charged. Raises ConcurrencyError, appending nothing, when an account
        moved since it was read: charge them again (one by one, `charge_session`, retries)."""
        price_list, version = self.fees.state("fees")
        done = Charged(version)
        by_client: dict[str, list[tuple[SessionOutcome, Metadata]]] = {}
        for session, meta in sessions:
            by_client.setdefault(session.client_id, []).append((session, meta))
        accounts = self.store.load_many([account_stream(c) for c in by_client])
        decider = self.accounts.decider
        appends = []
        for client_id, theirs in by_client.items():
            stream = account_stream(client_id)
            history = accounts[stream]
            state, new, metas = fold(decider, history), [], []
            for session, meta in theirs:
                schedule = price_list.in_force(local_date(session.starts_at))
                try:
                    decided = decider.decide(state, ChargeSession(session, schedule))
                except DomainError as err:
                    done.refused[session.session_id] = err
                    continue
                for event in decided:
                    state = decider.evolve(state, event)
                new += decided
                metas += [meta] * len(decided)
            if new:
                appends.append(StreamAppend(stream, len(history), new, metas))
        if appends:
            self.store.append_streams(appends, sessions[0][1])
        return done

    def numbered(
        self,
        client_id: str,
        series: str,
        document_id: str,
        make: Callable[[str], object],
        meta: Metadata,
    ) -> Outcome:
        """Run `make(number)` on the account with the next number of `series`, claimed in the
        command's own transaction; a number taken meanwhile makes it try the next one."""
        for _ in range(ATTEMPTS):
            n = self._last(series) + 1
            number = f"{SERIES[series]}-{n:06d}"
            command = make(number)

            def claim(session, n=n, number=number):
                try:
                    self.numbers.insert_one(
                        {
                            "_id": f"{series}:{n}",
                            "series": series,
                            "n": n,
                            "number": number,
                            "document_id": document_id,
                            "client_id": client_id,
                        },
                        session=session,
                    )
                except DuplicateKeyError:
                    raise NumberTaken(number) from None

            try:
                # nothing on the account: the decider answers "nothing to invoice"
                return self.accounts.run(account_stream(client_id), command, meta, also=claim)
            except NumberTaken:
                continue
        raise Conflict("invoices were being numbered by many at once; try again")

    def _last(self, series: str) -> int:
        doc = self.numbers.find_one({"series": series}, {"n": 1}, sort=[("n", DESCENDING)])
        return doc["n"] if doc else 0

    def client_of_document(self, document_id: str) -> str:
        """Whose account an invoice or credit note is on (from the write side: current)."""
        doc = self.numbers.find_one({"document_id": document_id}, {"client_id": 1})
        if doc is None:
            raise NotFound(f"no invoice {document_id}")
        return doc["client_id"]

    def invoice(self, invoice_id: str) -> tuple[dict, AccountState, list[dict]]:
        """(the InvoiceIssued data, the account now, the credit notes against it)."""
        events = self.account(self.client_of_document(invoice_id))
        issued = next(
            (e for e in events if e.type == "InvoiceIssued" and e.data["invoice_id"] == invoice_id),
            None,
        )
        if issued is None:
            raise NotFound(f"no invoice {invoice_id}")
        state = fold(self.accounts.decider, events)
        notes = [
            dict(e.data)
            for e in events
            if e.type == "CreditNoteIssued" and e.data["invoice_id"] == invoice_id
        ]
        return dict(issued.data), state, notes


def application() -> Application:
    """The Application for this request (stateless beyond the store: made per request). The
    document-number indexes are made on the first request, never before gunicorn forks."""
    store = context().store
    if not current_app.extensions.get("billing_indexes"):
        ensure_indexes(store)
        current_app.extensions["billing_indexes"] = True
    return Application(store, clock=current_app.config["BILLING_CLOCK"])
