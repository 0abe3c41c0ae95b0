"""The end of a course of treatment (domain/course.py): the therapist or the clinical lead
records it with its outcome; the client may go on into maintenance with boosters. The
route is on the `care` blueprint of queries/care.py."""

from __future__ import annotations

from shared.auth import current_identity, requires
from shared.events import utcnow
from shared.web import request_metadata

from ..application import application
from ..domain.course import CompleteCourse
from ..queries.care import CLINICAL, blp
from ..queries.views import course_view
from ..schemas import problems
from ..schemas.course import CourseCompletedIn, CourseOut


@blp.route("/<client_id>/course-completed", methods=["POST"])
@requires(*CLINICAL)
@problems(blp, 401, 403, 404, 409)
@blp.arguments(CourseCompletedIn)
@blp.response(200, CourseOut)
def course_completed(body, client_id):
    """Record that the course of treatment is completed, with its outcome
    (`CourseCompleted`; after session 16 was attended it is completed already and this adds
    the outcome, `CourseOutcomeRecorded`). With `maintenance` the client moves into the
    maintenance phase (`PhaseChanged`) for booster sessions. The client stays in care:
    discharge is `POST /clients/{id}/discharge`. 409 when already recorded or discharged."""
    app, who = application(), current_identity()
    command = CompleteCourse(
        client_id,
        ended="therapist",
        completed_at=utcnow(),
        by=who.sub,
        sessions_attended=app.course_sessions_attended(client_id),
        outcome=body["outcome"],
        outcome_summary=body["outcome_summary"],
        maintenance=body["maintenance"],
    )
    outcome = app.complete_course(command, who, request_metadata())
    return course_view(outcome.state)
