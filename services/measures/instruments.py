"""The four instruments as data, and their scoring. Pure: no Flask, no pymongo.

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
    loinc_total: str | None = None

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
    preamble="Over the last 2 weeks, how often have you been bothered by any of the following problems?",
    items=(
        "Little interest or pleasure in doing things",
        "Feeling down, depressed, or hopeless",
        "Trouble falling or staying asleep, or sleeping too much",
        "Feeling tired or having little energy",
        "Poor appetite or overeating",
        "Feeling bad about yourself \u2014 or that you are a failure or have let yourself or your family down",
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
    loinc_total="44261-6",
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
    loinc_total="70274-6",
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
    # Mundt 2002: "< 10 subclinical, 10-20 significant, > 20 moderately severe or worse"
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
    caseness=10,
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
    caseness=11,
)

INSTRUMENTS: dict[str, Instrument] = {i.code: i for i in (PHQ9, GAD7, WSAS, CORE10)}
DEFAULT_SET = ("PHQ-9", "GAD-7", "WSAS")


@dataclass(frozen=True)
class Score:
    instrument: str
    answers: tuple[int | None, ...]
    total: float | None
    band: str | None
    prorated: bool

    def as_event(self) -> dict:
        return {
            "instrument": self.instrument,
            "answers": list(self.answers),
            "total": self.total,
            "band": self.band,
            "prorated": self.prorated,
        }


def answer_errors(code: str, answers) -> dict[int, str]:
    """{1-based item: why} for answers that cannot be accepted. `None` means "not answered".

    One rule however the answers arrive (the client's link or staff entering a paper form;
    clinical.md): a form is accepted only if the instrument's published rule can score it,
    so more missing items than `max_missing` (PHQ-9 and GAD-7: none; WSAS and CORE-10: one)
    names every missing item; it is never stored unscored."""
    instrument = INSTRUMENTS[code]
    if not isinstance(answers, (list, tuple)):
        return {0: "answers must be a list"}
    errors: dict[int, str] = {}
    missing: list[int] = []
    for number in range(1, len(instrument.items) + 1):
        value = answers[number - 1] if number <= len(answers) else None
        if value is None:
            missing.append(number)
        elif isinstance(value, bool) or not isinstance(value, int):
            errors[number] = "must be a whole number"
        elif not 0 <= value <= instrument.item_max:
            errors[number] = f"must be between 0 and {instrument.item_max}"
    if len(missing) > instrument.max_missing:
        # the "not applicable" choice is an answer the client gave: name the others
        named = [n for n in missing if n not in instrument.optional_items] or missing
        for number in named:
            errors[number] = "missing: please answer this question"
    if len(answers) > len(instrument.items):
        errors[len(answers)] = f"{code} has only {len(instrument.items)} items"
    return errors


def score(code: str, answers) -> Score:
    """Total, band and whether the total was pro-rated. Call after `answer_errors` is empty."""
    instrument = INSTRUMENTS[code]
    values = [
        None if a is None else (instrument.item_max - a if n in instrument.reversed_items else a)
        for n, a in enumerate(answers, start=1)
    ]
    answered = [v for v in values if v is not None]
    missing = len(values) - len(answered)
    if missing > instrument.max_missing or not answered:
        total, prorated = None, False
    elif missing == 0:
        total, prorated = float(sum(answered)), False
    else:
        # CORE-10 (CamCOPS core10.py) and WSAS (mean substitution) give the same figure:
        # the mean of the answered items times the number of items.
        total, prorated = round(sum(answered) * len(values) / len(answered), 2), True
    return Score(code, tuple(answers), total, instrument.band(total), prorated)


def risk_items(code: str, answers) -> list[tuple[int, int | None]]:
    """[(item, answer)] for risk items answered above 0 or left unanswered (answer None).
    PHQ-9 item 9: Kroenke 2001 advises follow-up whatever the total; CORE-10 item 6: Barkham
    2013. An unanswered risk item (CORE-10 may be scored with one item missing) never passes
    silently: the therapist is asked to follow it up (clinical.md)."""
    instrument = INSTRUMENTS[code]
    out = []
    for n in sorted(instrument.risk_items):
        answer = answers[n - 1] if n <= len(answers) else None
        if answer is None or answer > 0:
            out.append((n, answer))
    return out


def describe(instrument: Instrument) -> dict:
    """The instrument as the API shows it."""
    return {
        "code": instrument.code,
        "title": instrument.title,
        "source": instrument.source,
        "period": instrument.period,
        "preamble": instrument.preamble,
        "items": [
            {
                "number": n,
                "text": text,
                "not_applicable": instrument.optional_items.get(n),
                "reversed": n in instrument.reversed_items,
                "risk": n in instrument.risk_items,
            }
            for n, text in enumerate(instrument.items, start=1)
        ],
        "options": [{"value": v, "label": label} for v, label in enumerate(instrument.options)],
        "item_range": [0, instrument.item_max],
        "total_range": [0, instrument.total_max],
        "bands": [
            {"from": b.minimum, "above": b.above, "label": b.label} for b in instrument.bands
        ],
        "caseness": instrument.caseness,
        "loinc_total": instrument.loinc_total,
    }
