"""The emulator's credit ledger: price per generated second, reserve, settle."""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping

__all__ = ["DEFAULT_PRICES", "DEFAULT_VIDEO_SECONDS", "CreditLedger"]

# Credits per generated second. Vidgo's Seedance prices are not documented [I]; these are
# plausible emulator values (a credit is worth $0.005). "*" prices every other model.
DEFAULT_PRICES: Mapping[str, float] = {"seedance-2": 10.0, "seedance-2-fast": 6.0, "*": 5.0}
# The length charged for a model whose input has no integer ``duration``.
DEFAULT_VIDEO_SECONDS = 5


class CreditLedger:
    """Hold the balance and the reservations of tasks still running.

    A submit reserves the task's price and is refused when the balance minus the
    reservations cannot pay it; a finished task is charged its price; a failed one is
    free (Vidgo's balance page: failed tasks cost nothing).
    """

    def __init__(self, balance: int, prices: Mapping[str, float] | None = None) -> None:
        if balance < 0:
            raise ValueError(f"credits must be >= 0 (got {balance})")
        self._prices = dict(DEFAULT_PRICES)
        if prices is not None:
            self._prices.update(prices)
        for model, price in self._prices.items():
            if not math.isfinite(price) or price < 0:
                raise ValueError(f"price of {model!r} must be a finite number >= 0 (got {price})")
        self._balance = balance
        self._reservations: dict[str, int] = {}
        self._lock = threading.Lock()  # read from other threads in run_in_thread() mode

    @property
    def balance(self) -> int:
        """Credits owned, reservations not subtracted."""
        return self._balance

    @property
    def reserved(self) -> int:
        """Credits held by tasks that have not ended."""
        return sum(self._reservations.values())

    @property
    def available(self) -> int:
        """Credits a new submit can use: the balance minus the reservations."""
        with self._lock:
            return self._balance - sum(self._reservations.values())

    def set_balance(self, credits: int) -> None:
        """Set the balance (reservations stay)."""
        with self._lock:
            self._balance = credits

    def price(self, model: str, input: Mapping[str, object]) -> int:
        """Return the price of one job: credits per second times the video's seconds, rounded up."""
        per_second = self._prices.get(model, self._prices.get("*", 0.0))
        duration = input.get("duration")
        seconds = (
            duration
            if isinstance(duration, int) and not isinstance(duration, bool) and duration > 0
            else DEFAULT_VIDEO_SECONDS
        )
        return math.ceil(per_second * seconds)

    def reserve(self, task_id: str, amount: int) -> bool:
        """Reserve ``amount`` for ``task_id``; return False when the available credits are short."""
        with self._lock:
            if self._balance - sum(self._reservations.values()) < amount:
                return False
            self._reservations[task_id] = amount
            return True

    def settle(self, task_id: str, *, charged: bool) -> int:
        """End ``task_id``'s reservation, charging it when ``charged``; return the amount charged."""
        with self._lock:
            amount = self._reservations.pop(task_id, 0)
            if charged:
                self._balance -= amount
                return amount
            return 0
