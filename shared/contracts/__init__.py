"""The published language between services: one marshmallow schema per event type and
version, registered in `shared.events.registry`. A service may add events or optional
fields here; changing a field's meaning needs a new version and an upcaster beside it.

Fields holding personal data or clinical free text carry `metadata={"personal": True}`:
the kernel encrypts them with the client's key (crypto-shredding); every event about a
client carries `client_id`, which names that key."""

from . import billing, measures, notifications, records, scheduling  # noqa: F401  (registers the types)
