"""What scheduling decides, pure (no Flask, no pymongo, no clock: the application passes in
the time and what a rule needs to know):

- `therapist`: who is bookable, for what, where and when (`therapist-<id>` streams)
- `session`: one session from booking to attended, missed or cancelled (`session-<id>`)
- `courses`: a 16-session IPT course or booster plan booked in one command (`course-<id>`)
- `diary`: the time rules (working hours in Europe/London, 50-minute slots, claim buckets)

Each decider evolves through one table {event type: function} and decides through one
{command type: function}."""
