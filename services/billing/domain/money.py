"""Money as whole minor units (pence) with its currency: never a float. Sums of different
currencies are refused rather than guessed at."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shared.domain import Invalid

CURRENCIES = ("GBP", "EUR", "USD")
SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$"}
MAX_PENCE = 100_000_000  # £1,000,000: anything larger for one line is a typing mistake


@dataclass(frozen=True, order=True)
class Money:
    pence: int
    currency: str = "GBP"

    def __post_init__(self):
        if isinstance(self.pence, bool) or not isinstance(self.pence, int):
            raise TypeError(f"money is whole pence, not {self.pence!r}")

    @classmethod
    def zero(cls, currency: str = "GBP") -> Money:
        return cls(0, currency)

    @classmethod
    def of(cls, data: Mapping | None, currency: str = "GBP") -> Money:
        """From the wire form {"amount": pence, "currency": "GBP"} (None is zero)."""
        if data is None:
            return cls(0, currency)
        return cls(int(data["amount"]), data["currency"])

    def wire(self) -> dict:
        return {"amount": self.pence, "currency": self.currency}

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise Invalid(
                f"amounts in {self.currency} and {other.currency} cannot be added",
                field="currency",
            )

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.pence + other.pence, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.pence - other.pence, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.pence, self.currency)

    def min(self, other: Money) -> Money:
        self._same(other)
        return self if self.pence <= other.pence else other

    def share(self, basis_points: int) -> Money:
        """This amount times basis_points / 10000, rounded half up to the penny (VAT)."""
        return Money((self.pence * basis_points + 5000) // 10000, self.currency)

    @property
    def positive(self) -> bool:
        return self.pence > 0

    def text(self) -> str:
        sign = "-" if self.pence < 0 else ""
        whole, pence = divmod(abs(self.pence), 100)
        return f"{sign}{SYMBOLS.get(self.currency, self.currency + ' ')}{whole:,}.{pence:02d}"


def total(amounts: Iterable[Money], currency: str = "GBP") -> Money:
    out = Money.zero(currency)
    for amount in amounts:
        out = out + amount
    return out
