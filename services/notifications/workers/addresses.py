"""Where a message goes, looked up at send time (so corrected details are used): the client's
email or phone as their preferences allow, the payer of an invoice, the person who enquired,
a therapist, the clinical lead or a staff inbox. Quiet hours defer a message to the client;
a recipient no longer to be reached voids it."""

from __future__ import annotations

from shared.crypto import DISPOSED
from shared.events import utcnow

from ..application.config import NotifyConfig
from ..domain import LEAD, quiet_ends
from ..domain.plans import ENQUIRER, FUNDER, contact_for
from .channels import Deferred, PermanentError, TransientError, Voided
from .lookups import Lookups


class Addresses:
    def __init__(self, config: NotifyConfig):
        self.config = config

    def of(self, message: dict, directory: Lookups) -> tuple[str | None, str]:
        """(address, inbox audience), looked up now (in the planner's `directory` and the
        client's preferences, read for the dispatcher's batch) so corrected details are used."""
        recipient, channel = message["recipient"], message["channel"]
        if message["kind"] == "invoice":
            return self._payer_address(message, directory), recipient
        if recipient == "client":
            return self._client_address(message, directory), "client"
        if recipient == ENQUIRER:
            found = directory.reader("enquirers").find_one({"_id": message["client_id"]})
            address = (found or {}).get("email" if channel == "email" else "phone")
            if not address or address == DISPOSED:
                raise Voided("no way to reach the person who enquired")
            return address, ENQUIRER
        if recipient == LEAD:
            return self.config.lead_email, LEAD
        if channel == "inbox":
            return None, recipient
        therapist = directory.reader("therapists").find_one({"_id": recipient})
        if not therapist or not therapist.get("email"):
            raise TransientError("the therapist's email address is not known yet")
        return therapist["email"], recipient

    def _client_address(self, message: dict, directory: Lookups) -> str:
        client = directory.reader("clients").find_one({"_id": message["client_id"]})
        if client and message["kind"] == "care_ended":
            client = {**client, "status": "active"}  # the one message after care ends
        if not client or client.get("status") != "active":
            raise Voided("the client is discharged or unknown")
        contact = contact_for(
            client, directory.preferences_of(message["client_id"]), self.config.default_quiet
        )
        if message["channel"] not in contact.channels:
            raise Voided(f"the client is no longer to be contacted by {message['channel']}")
        address = client.get("email") if message["channel"] == "email" else client.get("phone")
        if not address:
            raise PermanentError(f"no {message['channel']} address on record for the client")
        now = utcnow()
        until = quiet_ends(now, contact.quiet, self.config.tz)
        starts = (message.get("context") or {}).get("starts_at")
        if until is not None and (starts is None or until < starts):
            raise Deferred(until)
        return address

    def _payer_address(self, message: dict, directory: Lookups) -> str:
        """An invoice goes to whoever pays it, looked up now: the funder's e-mail from
        billing's funding, or the client's own. It is not a reminder, so neither the
        reminder channels nor discharge hold it back (a last invoice follows the last
        session); quiet hours still do, for the client."""
        client_id = message["client_id"]
        if message["recipient"] == FUNDER:
            funder = directory.reader("funders").find_one({"_id": client_id}) or {}
            if funder.get("payer") == "self" or not funder.get("payer_email"):
                raise Voided("billing's funding holds no e-mail address for the funder")
            return funder["payer_email"]
        client = directory.reader("clients").find_one({"_id": client_id})
        if client is None:
            raise TransientError("the client is not known yet")
        address = client.get("email")
        if not address or address == DISPOSED:
            raise Voided("no e-mail address on record for the client")
        prefs = directory.preferences_of(client_id)
        quiet = contact_for({**client, "status": "active"}, prefs, self.config.default_quiet).quiet
        until = quiet_ends(utcnow(), quiet, self.config.tz)
        if until is not None:
            raise Deferred(until)
        return address
