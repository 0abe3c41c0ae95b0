"""The notifications service's background loops: the dispatcher, which sends what the
planner put in the message book (dispatcher.py: claims, retries and records; delivery.py
composes and sends a message to the address addresses.py finds; channels.py sends, render.py
words; links.py and invoices.py fetch what a message carries from the service that issues
it, through fetch.py), and its urgent lane for risk alerts."""

from .dispatcher import Dispatcher


def workers(settings) -> list:
    return [
        Dispatcher(settings).run,
        Dispatcher(settings, name="urgent-lane", urgent_only=True).run,
    ]
