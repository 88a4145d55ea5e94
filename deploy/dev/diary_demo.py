"""The demo schools' e-diary content: classes, children, lessons and news (Estonian)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DemoLesson:
    """A lesson some school days ago; marks name the exceptions (the rest were present)."""

    days_ago: int
    subject: str
    topic: str | None
    marks: dict[str, str] | None = field(default_factory=dict)  # None: not marked yet


@dataclass(frozen=True)
class DemoClass:
    """A class or group; the teacher is a demo login's e-mail or a local-only name."""

    name: str
    teacher: str
    students: list[tuple[str, str, str | None]]  # given, family, guardian's e-mail
    lessons: list[DemoLesson]


@dataclass(frozen=True)
class DemoNews:
    """An announcement; with event_in it is an event that many days ahead."""

    title: str
    body: str
    author: str
    days_ago: int
    event_in: int | None = None
    audience: str | None = None  # a class's name: only its people see it; None: the school


TEACHER, PARENT, ADMIN = "opetaja@laagri.demo", "lapsevanem@laagri.demo", "admin@laagri.demo"
# The parent whose e-mail the school typed wrong (seed 003's way out: eID, then the profile).
MISTYPED = "mari.maasikas@gmial.ee"

DEMO_DIARY: dict[str, tuple[list[DemoClass], list[DemoNews]]] = {
    "laagri-kool": (
        [
            DemoClass(
                "3.a",
                TEACHER,
                [
                    ("Mia", "Mägi", PARENT),
                    ("Oskar", "Tamm", None),
                    ("Sofia", "Saar", None),
                    ("Robin", "Kuusk", None),
                    ("Emma", "Lepp", None),
                    ("Markus", "Sepp", None),
                    ("Liisa", "Maasikas", MISTYPED),
                ],
                [
                    DemoLesson(6, "Matemaatika", "Murdude liitmine", {"Oskar": "absent"}),
                    DemoLesson(5, "Eesti keel", "Eesti rahvaluule: regilaul", {"Mia": "late"}),
                    DemoLesson(4, "Loodusõpetus", "Veeringe looduses"),
                    DemoLesson(3, "Matemaatika", "Murdude lahutamine", {"Emma": "absent"}),
                    DemoLesson(2, "Inimeseõpetus", "Sõprus ja koostöö klassis"),
                    DemoLesson(
                        1, "Eesti keel", "Muinasjutu tunnused", {"Mia": "absent", "Markus": "late"}
                    ),
                    DemoLesson(0, "Matemaatika", None, None),
                ],
            )
        ],
        [
            DemoNews(
                "Raamatukogus on uued raamatud",
                "Kooli raamatukogu sai 40 uut lasteraamatut. "
                "Laenutada saab iga koolipäev kell 8–16.",
                ADMIN,
                4,
            ),
            DemoNews(
                "3.a lastevanemate koosolek",
                "Koosolek toimub klassiruumis 214 kell 18.00. "
                "Räägime õppekäigust Tallinna loomaaeda.",
                TEACHER,
                2,
                5,
                "3.a",
            ),
            DemoNews(
                "Heategevuslaat",
                "Laat toimub kooli aulas. Lapsed müüvad omatehtud küpsiseid "
                "ja meisterdusi; tulu läheb klassiekskursiooni heaks.",
                TEACHER,
                1,
                12,
            ),
        ],
    ),
    "laagri-huvialakool": (
        [
            DemoClass(
                "Robootikaring",
                "Margus Org",
                [("Karl", "Mägi", PARENT), ("Hugo", "Rebane", None), ("Anna", "Pärn", None)],
                [
                    DemoLesson(7, "Robootika", "LEGO robot sõidab mööda joont"),
                    DemoLesson(3, "Robootika", "Andurid: robot tunneb värve", {"Hugo": "absent"}),
                ],
            )
        ],
        [
            DemoNews(
                "Huvialakooli kontsert",
                "Kontsert toimub Laagri Kooli aulas kell 18. Esinevad muusika- ja tantsuringid.",
                ADMIN,
                3,
                20,
            )
        ],
    ),
    "laagri-lasteaed": (
        [
            DemoClass(
                "Päikesekiired",
                "Kersti Lill",
                [("Lotte", "Õunapuu", TEACHER), ("Rasmus", "Kivi", None), ("Mirjam", "Laur", None)],
                [
                    DemoLesson(2, "Muusika", "Laulud loomadest ja rütmimängud"),
                    DemoLesson(
                        1, "Liikumine", "Palli veeretamine ja püüdmine", {"Rasmus": "absent"}
                    ),
                ],
            )
        ],
        [
            DemoNews(
                "Perepäev lasteaias",
                "Ootame pered lasteaia hoovi perepäevale: mängud, "
                "tordilaud ja lemmikloomade näitus.",
                ADMIN,
                2,
                9,
            )
        ],
    ),
}

# The children's personal codes on the roster (by school and given name): an application for a
# parent's account names a child by code, and the school's review finds the child by it. Seed
# 003's parent applies for Oskar Tamm at Laagri Kool, or for Hugo Rebane (51411071008) at Laagri
# Huvialakool, whom no parent follows yet. Valid test codes (checksum and birth date).
DEMO_STUDENT_CODES: dict[str, dict[str, str]] = {
    "laagri-kool": {
        "Mia": "61703142202",
        "Oskar": "51705212273",
        "Sofia": "61708022349",
        "Robin": "51711092417",
        "Emma": "61701182482",
        "Markus": "51709302553",
        "Liisa": "61604112260",
    },
    "laagri-huvialakool": {
        "Karl": "51504231006",
        "Hugo": "51411071008",
        "Anna": "61602191003",
    },
    "laagri-lasteaed": {
        "Lotte": "62106111009",
        "Rasmus": "52009301003",
        "Mirjam": "62103051005",
    },
}
