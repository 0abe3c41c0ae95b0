"""The practice's price list and charging policy, in force from a date. A new list never
rewrites a charge already raised: each charge keeps the amount worked out when it was raised,
from the list in force on the session's date (Europe/London)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from shared.domain import Conflict, Invalid
from shared.events import NewEvent

from .money import MAX_PENCE, Money

KINDS = ("assessment", "treatment", "booster")
LATE_CHARGES = ("none", "full_fee", "fixed")
DEFAULT_NOTICE_HOURS = 24

# HMRC VAT Notice 701/57 ("Health professionals and pharmaceutical products") and the VAT
# Act 1994, Schedule 9, Group 7, Item 1: medical care by a registered health professional
# (e.g. an HCPC-registered practitioner psychologist) is exempt. A practice whose therapists
# are not on such a register charges VAT: `vat.exempt` false with its rate and number.
VAT_EXEMPT_STATEMENT = (
    "Exempt from VAT: medical care by a registered health professional "
    "(Value Added Tax Act 1994, Schedule 9, Group 7, Item 1)."
)


@dataclass(frozen=True)
class Price:
    kind: str
    amount: Money
    modality: str | None = None  # None: any modality
    therapist_id: str | None = None  # None: every therapist

    def specificity(self) -> int:
        return (self.therapist_id is not None) * 2 + (self.modality is not None)


@dataclass(frozen=True)
class LateCharge:
    charge: str = "none"  # none, full_fee (the session's fee) or fixed (`amount`)
    amount: Money | None = None


@dataclass(frozen=True)
class Vat:
    exempt: bool = True
    rate_basis_points: int = 0  # 2000 = 20 %
    number: str | None = None


@dataclass(frozen=True)
class FeeSchedule:
    effective_from: date
    currency: str
    prices: tuple[Price, ...]
    notice_hours: int = DEFAULT_NOTICE_HOURS
    late_cancellation: LateCharge = field(default_factory=LateCharge)
    did_not_attend: LateCharge = field(default_factory=LateCharge)
    vat: Vat = field(default_factory=Vat)

    def fee(self, kind: str, modality: str, therapist_id: str) -> Money | None:
        """The most specific price that fits (a therapist's own before the practice's, a
        modality's before any modality), or None when the list has none for this session."""
        fitting = [
            p
            for p in self.prices
            if p.kind == kind
            and p.modality in (None, modality)
            and p.therapist_id in (None, therapist_id)
        ]
        if not fitting:
            return None
        return max(fitting, key=Price.specificity).amount

    def vat_on(self, net: Money) -> Money:
        return (
            Money.zero(net.currency) if self.vat.exempt else net.share(self.vat.rate_basis_points)
        )

    @property
    def vat_statement(self) -> str:
        if self.vat.exempt:
            return VAT_EXEMPT_STATEMENT
        rate = f"{self.vat.rate_basis_points / 100:g}"
        return f"VAT charged at {rate}%. VAT registration number {self.vat.number}."

    @classmethod
    def from_data(cls, d: dict) -> FeeSchedule:
        currency = d["currency"]

        def late(x: dict | None) -> LateCharge:
            x = x or {}
            amount = x.get("amount")
            return LateCharge(x.get("charge", "none"), Money(amount, currency) if amount else None)

        vat = d.get("vat") or {}
        return cls(
            effective_from=d["effective_from"],
            currency=currency,
            prices=tuple(
                Price(
                    p["kind"],
                    Money(p["amount"], currency),
                    p.get("modality"),
                    p.get("therapist_id"),
                )
                for p in d["prices"]
            ),
            notice_hours=d.get("notice_hours") or DEFAULT_NOTICE_HOURS,
            late_cancellation=late(d.get("late_cancellation")),
            did_not_attend=late(d.get("did_not_attend")),
            vat=Vat(vat.get("exempt", True), vat.get("rate_basis_points") or 0, vat.get("number")),
        )


# -- the price list's decider -------------------------------------------------------------------
@dataclass(frozen=True)
class PriceList:
    schedules: tuple[FeeSchedule, ...] = ()
    raw: tuple[dict, ...] = ()  # the data of each schedule, for reading back

    def in_force(self, on: date) -> FeeSchedule | None:
        before = [s for s in self.schedules if s.effective_from <= on]
        return max(before, key=lambda s: s.effective_from) if before else None


@dataclass(frozen=True)
class SetFees:
    """Set the price list from `effective_from`. `today` is the practice's date now."""

    data: dict
    today: date


def _check(d: dict) -> None:
    seen = set()
    for i, p in enumerate(d["prices"]):
        key = (p["kind"], p.get("modality"), p.get("therapist_id"))
        if key in seen:
            raise Invalid(
                "the same session kind, modality and therapist is priced twice", field=f"prices.{i}"
            )
        seen.add(key)
        if not 0 < p["amount"] <= MAX_PENCE:
            raise Invalid(f"must be between 1 and {MAX_PENCE} pence", field=f"prices.{i}.amount")
    if not any(p["kind"] == "treatment" for p in d["prices"]):
        raise Invalid("the list needs a price for treatment sessions", field="prices")
    for name in ("late_cancellation", "did_not_attend"):
        x = d.get(name) or {}
        if x.get("charge") == "fixed" and not x.get("amount"):
            raise Invalid("a fixed charge needs its amount", field=f"{name}.amount")
        if x.get("charge") != "fixed" and x.get("amount"):
            raise Invalid("an amount goes only with a fixed charge", field=f"{name}.amount")
    vat = d.get("vat") or {}
    if vat.get("exempt", True) is False and not (
        vat.get("rate_basis_points") and vat.get("number")
    ):
        raise Invalid("a practice that charges VAT states its rate and VAT number", field="vat")


class Fees:
    """One stream (`fees`) for the practice's price lists."""

    def initial_state(self) -> PriceList:
        return PriceList()

    def evolve(self, state: PriceList, event) -> PriceList:
        apply = {"FeesSet": _fees_set}.get(event.type)
        return apply(state, dict(event.data)) if apply else state

    def decide(self, state: PriceList, command: SetFees) -> list[NewEvent]:
        d = command.data
        _check(d)
        # a list taking effect in the past would price some sessions of a day one way and the
        # rest (charged later) another: only the very first list may start before today, and
        # a list in force may only gain prices it lacked (nothing was charged at those)
        past = state.schedules and d["effective_from"] < command.today
        if past and not _only_adds_prices(state, d):
            raise Invalid(
                "a new price list takes effect today or later (a list in force may only gain "
                "prices it lacked); charges already raised keep their fee",
                field="effective_from",
            )
        if state.schedules and d["currency"] != state.schedules[-1].currency:
            raise Conflict("the practice bills in one currency", code="currency_changed")
        return [NewEvent("FeesSet", d)]


def _price_key(p: dict) -> tuple:
    return (p["kind"], p.get("modality"), p.get("therapist_id"))


POLICY = ("currency", "notice_hours", "late_cancellation", "did_not_attend", "vat")


def _only_adds_prices(state: PriceList, d: dict) -> bool:
    """The list already in force from that date, with prices added and nothing else changed."""
    old = next((r for r in state.raw if r["effective_from"] == d["effective_from"]), None)
    if old is None or any(old.get(k) != d.get(k) for k in POLICY):
        return False
    new = {_price_key(p): p["amount"] for p in d["prices"]}
    return all(new.get(_price_key(p)) == p["amount"] for p in old["prices"])


def _fees_set(state: PriceList, d: dict) -> PriceList:
    """A list for a date already listed replaces it (a correction before it takes effect)."""
    keep = [
        (s, r)
        for s, r in zip(state.schedules, state.raw, strict=False)
        if s.effective_from != d["effective_from"]
    ]
    keep.append((FeeSchedule.from_data(d), d))
    keep.sort(key=lambda pair: pair[0].effective_from)
    return PriceList(tuple(s for s, _ in keep), tuple(r for _, r in keep))
