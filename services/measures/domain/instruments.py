"""The instruments, each stated once: one `Instrument` entry in `INSTRUMENTS` holds its
wording, options, scoring rule, bands, caseness line, risk items and FHIR code. Everything
else derives from this table: scoring (scoring.py), the request schema and the event
contract's checks, `GET /instruments` (which the portal draws its charts from), the
trajectory and the FHIR export. A new instrument is one entry here (and its tests).
Pure: no Flask, no pymongo.

Bands and thresholds as /shared/clinical.md states them ("Questionnaires" table; caseness
from "NHS Talking Therapies outcome rules": PHQ-9 >= 10, GAD-7 >= 8; CORE-10 clinical
cut-off 11; WSAS has none there, so no caseness line is drawn for it: its 10 and 20 are band
edges, drawn as bands).

Sources (item wording and response options kept exactly as published; all four are free to
use in clinical practice):
- PHQ-9: Kroenke K, Spitzer RL, Williams JBW (2001). The PHQ-9: validity of a brief
  depression severity measure. J Gen Intern Med 16:606-613. Bands 5/10/15/20 from that paper.
- GAD-7: Spitzer RL, Kroenke K, Williams JBW, Lowe B (2006). A brief measure for assessing
  generalized anxiety disorder. Arch Intern Med 166:1092-1097. Bands 5/10/15.
- WSAS: Mundt JC, Marks IM, Shear MK, Greist JH (2002). The Work and Social Adjustment Scale.
  Br J Psychiatry 180:461-464. < 10 subclinical, 10-20 significant, > 20 moderately severe or
  worse. Missing work item ("not applicable": retired or not working for reasons unrelated to
  the problem): the NHS Talking Therapies / NHS Data Dictionary convention substitutes the mean
  of the answered items for a single missing item; more than one missing is not scored.
- CORE-10: Barkham M et al. (2013). The CORE-10: a short measure of psychological distress
  for routine use in the psychological therapies. Couns Psychother Res 13(1):3-13. Items 2 and
  3 are positively worded and reverse-scored; one missing item is pro-rated (mean of the
  answered items x 10, as CamCOPS core10.py does); more missing is not scored. Bands from
  Barkham 2013 (clinical cut-off 11).
- PHQ-9 / GAD-7 with any item missing are not scored: neither paper gives a pro-rating rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FREQUENCY = ("Not at all", "Several days", "More than half the days", "Nearly every day")
CORE_FREQUENCY = (
    "Not at all",
    "Only occasionally",
    "Sometimes",
    "Often",
    "Most or all of the time",
)
# WSAS anchors are printed at 0, 2, 4, 6, 8; the odd points are unlabelled on the form.
WSAS_SCALE = ("Not at all", "", "Slightly", "", "Definitely", "", "Markedly", "", "Very severely")


@dataclass(frozen=True)
class Band:
    minimum: float  # the band starts here; it ends where the next one starts
    label: str
    above: bool = False  # starts strictly above `minimum` (WSAS "> 20")

    def holds(self, total: float) -> bool:
        return total > self.minimum if self.above else total >= self.minimum


@dataclass(frozen=True)
class Loinc:
    """A LOINC code for the total score, with LOINC's own display text (loinc.org)."""

    code: str
    display: str


@dataclass(frozen=True)
class Instrument:
    code: str
    title: str
    source: str
    period: str
    preamble: str
    items: tuple[str, ...]
    options: tuple[str, ...]  # option label per value 0..n-1
    bands: tuple[Band, ...]
    reversed_items: frozenset[int] = frozenset()  # 1-based
    risk_items: frozenset[int] = frozenset()  # 1-based: an answer > 0 needs follow-up
    optional_items: dict[int, str] = field(default_factory=dict)  # 1-based -> "not applicable" text
    max_missing: int = 0  # items that may be missing and still scored
    caseness: float | None = None  # the clinical threshold drawn on trajectories
    caseness_label: str = "caseness"  # what the line is called beside it
    loinc: Loinc | None = None  # the total score's LOINC code; None: FHIR `code.text` only

    @property
    def item_max(self) -> int:
        return len(self.options) - 1

    @property
    def total_max(self) -> int:
        return self.item_max * len(self.items)

    def band(self, total: float | None) -> str | None:
        if total is None:
            return None
        label = None
        for band in self.bands:
            if band.holds(total):
                label = band.label
        return label


PHQ9 = Instrument(
    code="PHQ-9",
    title="Patient Health Questionnaire (PHQ-9)",
    source="Kroenke, Spitzer & Williams 2001, J Gen Intern Med 16:606-613",
    period="the last 2 weeks",
    preamble="Over the last 2 weeks, how often have you been bothered by any of the following "
    "problems?",
    items=(
        "Little interest or pleasure in doing things",
        "Feeling down, depressed, or hopeless",
        "Trouble falling or staying asleep, or sleeping too much",
        "Feeling tired or having little energy",
        "Poor appetite or overeating",
        "Feeling bad about yourself \u2014 or that you are a failure or have let yourself or "
        "your family down",
        "Trouble concentrating on things, such as reading the newspaper or watching television",
        "Moving or speaking so slowly that other people could have noticed? Or the opposite \u2014 "
        "being so fidgety or restless that you have been moving around a lot more than usual",
        "Thoughts that you would be better off dead or of hurting yourself in some way",
    ),
    options=FREQUENCY,
    bands=(
        Band(0, "minimal"),
        Band(5, "mild"),
        Band(10, "moderate"),
        Band(15, "moderately severe"),
        Band(20, "severe"),
    ),
    risk_items=frozenset({9}),
    caseness=10,
    # LOINC 44261-6, as listed in HL7's Personal Health Record IG value set
    # observation-scored-assessment-score-codes (clinical.md: FHIR codes)
    loinc=Loinc("44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]"),
)

GAD7 = Instrument(
    code="GAD-7",
    title="Generalised Anxiety Disorder Assessment (GAD-7)",
    source="Spitzer, Kroenke, Williams & Lowe 2006, Arch Intern Med 166:1092-1097",
    period="the last 2 weeks",
    preamble="Over the last 2 weeks, how often have you been bothered by the following problems?",
    items=(
        "Feeling nervous, anxious or on edge",
        "Not being able to stop or control worrying",
        "Worrying too much about different things",
        "Trouble relaxing",
        "Being so restless that it is hard to sit still",
        "Becoming easily annoyed or irritable",
        "Feeling afraid as if something awful might happen",
    ),
    options=FREQUENCY,
    bands=(Band(0, "minimal"), Band(5, "mild"), Band(10, "moderate"), Band(15, "severe")),
    caseness=8,
    loinc=Loinc(
        "70274-6", "Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]"
    ),
)

WSAS = Instrument(
    code="WSAS",
    title="Work and Social Adjustment Scale (WSAS)",
    source="Mundt, Marks, Shear & Greist 2002, Br J Psychiatry 180:461-464",
    period="now",
    preamble="People's problems sometimes affect their ability to do certain day-to-day tasks in "
    "their lives. To rate your problems look at each section and determine on the scale "
    "provided how much your problem impairs your ability to carry out the activity.",
    items=(
        "Because of my problem my ability to work is impaired. 0 means not at all impaired and "
        "8 means very severely impaired to the point I can't work.",
        "Because of my problem my home management (cleaning, tidying, shopping, cooking, looking "
        "after home or children, paying bills) is impaired.",
        "Because of my problem my social leisure activities (with other people e.g. parties, "
        "bars, clubs, outings, visits, dating, home entertaining) are impaired.",
        "Because of my problem my private leisure activities (done alone, such as reading, "
        "gardening, collecting, sewing, walking alone) are impaired.",
        "Because of my problem my ability to form and maintain close relationships with others, "
        "including those I live with, is impaired.",
    ),
    options=WSAS_SCALE,
    # Mundt 2002 (clinical.md): "< 10 subclinical, 10-20 significant impairment,
    # > 20 moderately severe or worse"
    bands=(
        Band(0, "subclinical"),
        Band(10, "significant impairment"),
        Band(20, "moderately severe or worse", above=True),
    ),
    optional_items={
        1: "Not applicable: I am retired or choose not to have a job for reasons "
        "unrelated to my problem"
    },
    max_missing=1,
)

CORE10 = Instrument(
    code="CORE-10",
    title="Clinical Outcomes in Routine Evaluation (CORE-10)",
    source="Barkham et al. 2013, Couns Psychother Res 13(1):3-13",
    period="the last week",
    preamble="This form has 10 statements about how you have been over the last week. Please "
    "read each statement and think how often you felt that way last week. Then choose "
    "the answer which is closest to this.",
    items=(
        "I have felt tense, anxious or nervous",
        "I have felt I have someone to turn to for support when needed",
        "I have felt able to cope when things go wrong",
        "Talking to people has felt too much for me",
        "I have felt panic or terror",
        "I made plans to end my life",
        "I have had difficulty getting to sleep or staying asleep",
        "I have felt despairing or hopeless",
        "I have felt unhappy",
        "Unwanted images or memories have been distressing me",
    ),
    options=CORE_FREQUENCY,
    bands=(
        Band(0, "healthy"),
        Band(6, "low"),
        Band(11, "mild"),
        Band(15, "moderate"),
        Band(20, "moderate-to-severe"),
        Band(25, "severe"),
    ),
    reversed_items=frozenset({2, 3}),
    risk_items=frozenset({6}),
    max_missing=1,
    caseness=11,  # Barkham 2013 clinical cut-off (clinical.md)
    caseness_label="clinical cut-off",
)

# The registry: every instrument the service knows, by code. Read it at call time (never
# copy it at import), so an entry added here is seen everywhere at once.
INSTRUMENTS: dict[str, Instrument] = {i.code: i for i in (PHQ9, GAD7, WSAS, CORE10)}
DEFAULT_SET = ("PHQ-9", "GAD-7", "WSAS")
