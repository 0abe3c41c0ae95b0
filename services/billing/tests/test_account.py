"""The account's rules after the charges, given/when/then, no I/O: waivers, invoices,
credit notes, payments, credit held and refunds."""

from datetime import date

from services.billing.domain import (
    Account,
    Addressee,
    ChargeSession,
    IssueCreditNote,
    IssueInvoice,
    Money,
    RecordPayment,
    RecordRefund,
    WaiveCharge,
    charge_id_for,
    ledger,
)
from services.billing.domain.fees import VAT_EXEMPT_STATEMENT
from shared.domain import Conflict, Invalid, NotFound, fold
from testkit.given import given

from .test_domain import GBP, charged, insurer, schedule, session


# -- waivers, invoices, credit notes, payments ----------------------------------------------------
def account_with(count=3, funding=None) -> list:
    history = [funding] if funding else []
    for n in range(1, count + 1):
        charged(history, ChargeSession(session(n), schedule()))
    return history


CLIENT = Addressee("Emma Client", "emma@example.test")


def invoice(number="INV-000001", invoice_id="i1", **kw):
    return IssueInvoice(invoice_id, number, date(2026, 3, 20), CLIENT, VAT_EXEMPT_STATEMENT, **kw)


def test_waive_with_a_reason_and_only_once():
    history = account_with(1)
    cid = charge_id_for("s1")
    [waived] = (
        given(Account(), history).when(WaiveCharge(cid, "bereavement")).then_types("ChargeWaived")
    )
    assert waived.data["amount"]["amount"] == 9000
    given(Account(), history + [waived]).when(WaiveCharge(cid, "again")).then_raises(
        Conflict, "already"
    )
    given(Account(), history).when(WaiveCharge("nope", "x")).then_raises(NotFound)
    assert ledger.owed(ledger.fold(history + [waived])["client"]) == 0


def test_an_invoice_is_addressed_to_the_payer_and_never_issued_twice_for_a_charge():
    history = account_with(3)
    [issued] = given(Account(), history).when(invoice()).then_types("InvoiceIssued")
    d = issued.data
    assert d["addressed_to"]["name"] == "Emma Client" and d["total"]["amount"] == 27000
    assert [line["description"] for line in d["lines"]] == ["Therapy session"] * 3
    assert d["vat_statement"] == VAT_EXEMPT_STATEMENT
    again = invoice("INV-000002", "i2", charge_ids=(charge_id_for("s1"),))
    given(Account(), history + [issued]).when(again).then_raises(Conflict, "invoiced")
    given(Account(), history + [issued]).when(invoice("INV-000002", "i2")).then_raises(
        Conflict, "nothing to invoice"
    )
    error = given(Account(), history).when(invoice(charge_ids=("ghost",))).then_raises(Invalid)
    assert error.field == "charge_ids.0"


def test_an_invoiced_charge_is_corrected_by_a_credit_note_not_a_waiver():
    history = account_with(2)
    history += Account().decide(fold(Account(), history), invoice())
    given(Account(), history).when(WaiveCharge(charge_id_for("s1"), "x")).then_raises(
        Conflict, "credit note"
    )
    note = IssueCreditNote(
        "n1", "CN-000001", "i1", date(2026, 3, 21), "wrong date", (charge_id_for("s1"),)
    )
    [credit] = given(Account(), history).when(note).then_types("CreditNoteIssued")
    assert credit.data["amount"]["amount"] == 9000 and credit.data["to_credit"]["amount"] == 0
    history.append(credit)
    assert ledger.owed(ledger.fold(history)["client"]) == 9000
    given(Account(), history).when(note).then_raises(Conflict, "already credited")


def test_an_insurer_invoice_goes_to_the_insurer():
    history = account_with(2, insurer(1))
    error = given(Account(), history).when(invoice()).then_raises(Invalid)
    assert error.field == "payer"
    [issued] = given(Account(), history).when(invoice(payer="funder")).then_types("InvoiceIssued")
    assert issued.data["addressed_to"] == {
        "name": "Acme Health",
        "email": "claims@acme.test",
        "reference": "POL-1",
    }


def test_part_payment_overpayment_credit_and_refund():
    history = account_with(2)
    history += Account().decide(fold(Account(), history), invoice())  # £180
    pay = RecordPayment("c1", "p1", "client", "card", Money(5000), date(2026, 3, 22))
    [part] = given(Account(), history).when(pay).then_types("PaymentRecorded")
    assert part.data["allocations"] == [
        {"invoice_id": "i1", "amount": {"amount": 5000, "currency": GBP}}
    ]
    history.append(part)
    given(Account(), history).when(pay).then([])  # the same payment recorded twice
    over = RecordPayment("c1", "p2", "client", "bank_transfer", Money(20000), date(2026, 3, 23))
    [rest] = given(Account(), history).when(over).then_types("PaymentRecorded")
    assert rest.data["to_credit"]["amount"] == 20000 - 13000
    history.append(rest)
    totals = ledger.fold(history)["client"]
    assert ledger.owed(totals) == -7000 and totals["credit"] == 7000
    too_much = RecordRefund("c1", "r1", "client", "card", Money(7001), date(2026, 3, 24))
    given(Account(), history).when(too_much).then_raises(Invalid, "credit held")
    refund = RecordRefund("c1", "r1", "client", "card", Money(7000), date(2026, 3, 24))
    history += given(Account(), history).when(refund).then_types("RefundRecorded")
    assert ledger.owed(ledger.fold(history)["client"]) == 0


def test_credit_held_is_used_by_the_next_invoice():
    history = account_with(1)
    history += Account().decide(
        fold(Account(), history),
        RecordPayment("c1", "p1", "client", "card", Money(5000), date(2026, 3, 2)),
    )
    [issued] = given(Account(), history).when(invoice()).then_types("InvoiceIssued")
    assert issued.data["credit_applied"]["amount"] == 5000
    state = fold(Account(), history + [issued])
    assert state.invoices["i1"].outstanding == Money(4000)


def test_absurd_payments_are_refused():
    history = account_with(1)
    for pence in (0, -100, 10**12):
        error = (
            given(Account(), history)
            .when(RecordPayment("c1", "p9", "client", "card", Money(pence), date(2026, 3, 2)))
            .then_raises(Invalid)
        )
        assert error.field == "amount"
    error = (
        given(Account(), history)
        .when(RecordPayment("c1", "p9", "funder", "card", Money(100), date(2026, 3, 2)))
        .then_raises(Invalid)
    )
    assert error.field == "payer"
    error = (
        given(Account(), history)
        .when(RecordPayment("c1", "p9", "client", "card", Money(100, "EUR"), date(2026, 3, 2)))
        .then_raises(Invalid)
    )
    assert error.field == "currency"


def test_the_statement_runs_line_by_line_to_the_balance():
    history = account_with(2)
    history += Account().decide(fold(Account(), history), invoice())
    history += Account().decide(
        fold(Account(), history),
        RecordPayment("c1", "p1", "client", "bank_transfer", Money(20000), date(2026, 3, 22)),
    )
    lines = ledger.statement(history)
    assert [(x["what"], x["amount"]["amount"], x["owed"]["amount"]) for x in lines] == [
        ("Therapy session", 9000, 9000),
        ("Therapy session", 9000, 18000),
        ("Invoice INV-000001", 0, 18000),
        ("Payment (bank transfer)", -20000, -2000),
    ]
    assert lines[-1]["owed"]["amount"] == ledger.owed(ledger.fold(history)["client"])


def test_what_a_credit_note_frees_settles_the_payers_other_invoices_first():
    history = account_with(3)
    state = fold(Account(), history)
    history += Account().decide(state, invoice(charge_ids=(charge_id_for("s1"),)))
    history += Account().decide(
        fold(Account(), history), invoice("INV-000002", "i2", charge_ids=(charge_id_for("s2"),))
    )
    pay = RecordPayment("c1", "p1", "client", "card", Money(9000), date(2026, 3, 22), None, "i1")
    history += Account().decide(fold(Account(), history), pay)  # i1 paid, i2 open
    note = IssueCreditNote("n1", "CN-000001", "i1", date(2026, 3, 23), "billed in error")
    [credit] = given(Account(), history).when(note).then_types("CreditNoteIssued")
    assert credit.data["allocations"] == [
        {"invoice_id": "i2", "amount": {"amount": 9000, "currency": GBP}}
    ]
    assert credit.data["to_credit"]["amount"] == 0
    state = fold(Account(), history + [credit])
    assert state.invoices["i2"].outstanding == Money(0) and state.credit_of("client") == Money(0)
    assert ledger.owed(ledger.fold(history + [credit])["client"]) == 9000  # s3, not invoiced
