"""What billing decides, pure: money (`money`), the price list (`fees`), the account's state
(`state`), charges from the diary (`charging`), invoices, credit notes, payments and refunds
(`account`) and the balances worked out from events (`ledger`)."""

from .account import (
    Account,
    Addressee,
    IssueCreditNote,
    IssueInvoice,
    RecordPayment,
    RecordRefund,
    SetFunding,
    WaiveCharge,
)
from .charging import ChargeSession, SessionOutcome, charge_id_for, local_date
from .fees import Fees, FeeSchedule, PriceList, SetFees
from .money import Money

__all__ = [
    "Account",
    "Addressee",
    "ChargeSession",
    "FeeSchedule",
    "Fees",
    "IssueCreditNote",
    "IssueInvoice",
    "Money",
    "PriceList",
    "RecordPayment",
    "RecordRefund",
    "SessionOutcome",
    "SetFees",
    "SetFunding",
    "WaiveCharge",
    "charge_id_for",
    "local_date",
]
