"""FHIR R4 export of a client's questionnaires and appointments (UK Core profiles named where
they exist): the Patient, a Practitioner per therapist, an Appointment per session,
QuestionnaireResponse per completed questionnaire, Observation per total score, Flag per
open risk alert. An Observation is coded with the instrument's LOINC code and display where
the registry gives one (domain/instruments.py); an instrument without one is named by
`code.text` alone, since FHIR forbids an empty `coding` array.

Every reference resolves inside the Bundle: each entry's `fullUrl` is `{RAPPORT}/{type}/{id}`
and references are relative (`Patient/{id}`), which FHIR resolves against the referencing
entry's base (R4 Bundle, "Resolving references in Bundles"). The Patient and Practitioner
carry only Rapport's identifier: this service holds no names, and the records export has the
details. The tests validate the whole Bundle with fhir.resources (R4B models)."""

from __future__ import annotations

from ..domain import INSTRUMENTS, Instrument

LOINC = "http://loinc.org"
RAPPORT = "https://rapport.example/fhir"


def _ref(client_id: str) -> dict:
    return {"reference": f"Patient/{client_id}"}


def questionnaire_response(response: dict, score: dict) -> dict:
    instrument = INSTRUMENTS[score["instrument"]]
    items = []
    for number, (text, answer) in enumerate(
        # answers stored before disposal; afterwards none (sealed), so the items stay bare
        zip(instrument.items, score.get("answers") or [], strict=False),
        start=1,
    ):
        item = {"linkId": str(number), "text": text}
        if answer is not None:
            item["answer"] = [{"valueInteger": answer}]
        items.append(item)
    return {
        "resourceType": "QuestionnaireResponse",
        "id": f"{response['_id']}-{instrument.code}",
        "questionnaire": f"{RAPPORT}/Questionnaire/{instrument.code}",
        "status": "completed",
        "subject": _ref(response["client_id"]),
        "authored": response["completed_at"].isoformat(),
        "item": items,
    }


def observation(response: dict, score: dict) -> dict | None:
    if score.get("total") is None:
        return None  # not scored (too many items missing): no total to report
    instrument = INSTRUMENTS[score["instrument"]]
    return {
        "resourceType": "Observation",
        "id": f"{response['_id']}-{instrument.code}-total",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "survey",
                    }
                ]
            }
        ],
        "code": observation_code(instrument),
        "subject": _ref(response["client_id"]),
        "effectiveDateTime": response["completed_at"].isoformat(),
        "valueQuantity": {"value": score["total"], "unit": "score"},
        "derivedFrom": [
            {"reference": f"QuestionnaireResponse/{response['_id']}-{instrument.code}"}
        ],
    } | (  # FHIR forbids empty arrays: no band, no interpretation
        {"interpretation": [{"text": score["band"]}]} if score.get("band") else {}
    )


def observation_code(instrument: Instrument) -> dict:
    code = {"text": f"{instrument.title} total score"}
    if instrument.loinc is not None:
        loinc = instrument.loinc
        code["coding"] = [{"system": LOINC, "code": loinc.code, "display": loinc.display}]
    return code


def _answer(alert: dict) -> str:
    """The answer is sealed with the client's key; once disposed of it is gone. A risk item
    left blank says so (it still needs follow-up)."""
    if alert.get("unanswered"):
        return "left unanswered"
    answer = alert.get("answer")
    return "[disposed]" if answer is None else f"answered {answer}"


def flag(alert: dict) -> dict:
    return {
        "resourceType": "Flag",
        "id": alert["_id"],
        "status": "active",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/flag-category",
                        "code": "clinical",
                    }
                ]
            }
        ],
        "code": {"text": f"Risk: {alert['instrument']} item {alert['item']} {_answer(alert)}"},
        "subject": _ref(alert["client_id"]),
        "period": {"start": alert["indicated_at"].isoformat()},
    }


def _identified(resource_type: str, id_: str, system: str) -> dict:
    return {
        "resourceType": resource_type,
        "id": id_,
        "identifier": [{"system": f"{RAPPORT}/{system}", "value": id_}],
    }


# scheduling's session status -> FHIR Appointment.status (R4 value set appointmentstatus)
_APPOINTMENT_STATUS = {
    "booked": "booked",
    "attended": "fulfilled",
    "cancelled": "cancelled",
    "missed": "noshow",
}


def appointment(session: dict) -> dict:
    status = _APPOINTMENT_STATUS[session.get("status") or "booked"]
    number = f" {session['number']}" if session.get("number") else ""
    found = {
        "resourceType": "Appointment",
        "id": session["_id"],
        "status": status,
        "serviceType": [{"text": "Interpersonal psychotherapy (IPT)"}],
        "description": f"IPT {session.get('kind') or 'treatment'} session{number}",
        "start": session["starts_at"].isoformat(),
        "participant": [
            {"actor": _ref(session["client_id"]), "status": "accepted"},
            {
                "actor": {"reference": f"Practitioner/{session['therapist_id']}"},
                "status": "accepted",
            },
        ],
    }
    if session.get("ends_at"):
        found["end"] = session["ends_at"].isoformat()
    if session.get("modality"):
        found["appointmentType"] = {"text": session["modality"]}
    return found


def bundle(
    client_id: str, responses: list[dict], open_alerts: list[dict], sessions: list[dict]
) -> dict:
    therapists = sorted({s["therapist_id"] for s in sessions if s.get("therapist_id")})
    resources = [_identified("Patient", client_id, "client-id")]
    resources += [_identified("Practitioner", t, "therapist-id") for t in therapists]
    # an Appointment needs its start (FHIR app-3): a session known only from its attendance
    # without a time is left out rather than exported invalid
    resources += [appointment(s) for s in sessions if s.get("starts_at")]
    for response in responses:
        for score in response["scores"]:
            resources.append(questionnaire_response(response, score))
            obs = observation(response, score)
            if obs:
                resources.append(obs)
    resources += [flag(a) for a in open_alerts]
    # a collection has no `total` (FHIR bdl-1: searchset and history only)
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": f"{RAPPORT}/{r['resourceType']}/{r['id']}", "resource": r}
            for r in resources
        ],
    }
