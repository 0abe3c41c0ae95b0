"""The notifications service's background loops: the dispatcher, which sends what the
planner put in the message book (dispatcher.py; channels.py sends, render.py words,
links.py fetches questionnaire links from measures), and its urgent lane for risk alerts."""

from .dispatcher import Dispatcher


def workers(settings) -> list:
    return [
        Dispatcher(settings).run,
        Dispatcher(settings, name="urgent-lane", urgent_only=True).run,
    ]
