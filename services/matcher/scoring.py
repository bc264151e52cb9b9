"""How meaningful one interaction is: a weight in [0, 1] (pure: no I/O imports).

Grounded in tie-strength research: composed communication predicts growing closeness while
one-click actions do not (Burke & Kraut, CHI 2014); so a like weighs ~0, a share little, a
mention or comment some, a reply or direct message much, and a call by its length (a missed
or ten-second call is not a conversation). Text, when present, refines it: phatic and
low-effort replies ("ok", "thanks", "lol", "+1", emoji only, a lone link) in English, Spanish,
French, German, Portuguese, Italian and Dutch score near zero; composed words, questions and
replies that answer score higher; bots and automated messages score zero. Text is used here
to compute the weight and then dropped: the normalizer (and ingest, for the generic source)
scores each interaction with `scored` before it goes onto ``interactions``, so the text never
travels past that point and is never stored in pair state.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

from schemas.events import Interaction

#: Base weight of each kind, before text and structure.
KIND_WEIGHT: Final[dict[str, float]] = {
    "like": 0.0,
    "share": 0.1,
    "mention": 0.3,
    "comment": 0.45,
    "reply": 0.7,
    "message": 0.7,
    "call": 0.6,  # when the duration is unknown
    "in_person": 0.0,  # not an online exchange: it means the pair already meets
}
#: An exchange at or over this weight counts as "meaningful" for the decision.
MEANINGFUL: Final = 0.3
#: A call at or under this many seconds is an attempt, not a conversation.
SHORT_CALL_S: Final = 10.0

# Whole-message phatic phrases, after normalisation (lower case, no punctuation or emoji,
# repeated letters squeezed). Single tokens cover combinations: "ok thanks", "si gracias".
_PHATIC_TOKENS: Final = frozenset(
    """
    ok okay okey k kk ok yes yeah yea yep yup ya no nope nah sure thanks thank thx ty tysm
    cool nice great awesome wow lol lmao rofl haha hahaha hehe heh lmfao omg same agreed
    true indeed np welcome you u very much so this yay congrats gg noice dope sweet
    hi hey hello hiya yo sup bye cya morning night gn gm
    hola adiós adios buenas salut coucou bonjour bonsoir hallo moin tschüss tschuss servus
    oi olá ola tchau ciao salve hoi doei
    gracias vale si sí claro genial bueno jaja jajaja muy bien de nada perfecto guay
    merci oui ouais non daccord d'accord super génial genial mdr ptdr bien trop cool top parfait
    danke ja nein genau stimmt klar alles schön dir echt toll prima jo jep
    obrigado obrigada valeu sim não nao legal kkk kkkk beleza show rs top ótimo otimo
    grazie sì no certo perfetto bello bene va ahah ahahah esatto
    bedankt dank je jij ja nee leuk prima top mooi
    """.split()  # noqa: SIM905 - one language per line reads better
)
_PHATIC_PHRASES: Final = frozenset(
    {
        "plus 1",
        "+1",
        "me too",
        "thank you",
        "thank you so much",
        "thanks a lot",
        "good job",
        "well done",
        "good point",
        "sounds good",
        "got it",
        "of course",
        "muchas gracias",
        "merci beaucoup",
        "vielen dank",
        "danke schön",
        "muito obrigado",
        "grazie mille",
        "dank je wel",
        "alles klar",
        "va bene",
        "de rien",
        "bitte schön",
        "nice one",
        "good one",
        "love it",
        "love this",
        "so true",
        "haha yes",
        "lol yes",
        "ok cool",
    }
)
_BOT_NAMES: Final = frozenset(
    {
        "automoderator",
        "dependabot",
        "github-actions",
        "renovate",
        "codecov",
        "stale",
        "mergify",
        "netlify",
        "vercel",
        "sonarcloud",
        "coveralls",
        "snyk-bot",
        "remindmebot",
    }
)
_BOT_TEXT: Final = re.compile(
    r"this is an automated|automatically generated|do not reply|i am a bot|i'm a bot"
    r"|beep boop|unsubscribe|this action was performed automatically",
    re.I,
)
_URL: Final = re.compile(r"https?://\S+|www\.\S+", re.I)
_MENTION: Final = re.compile(r"(?<!\w)@[\w.@:-]+|<@[A-Z0-9|]+>|u/\w+")
_WORD: Final = re.compile(r"[^\W\d_][\w'’-]*", re.UNICODE)
_REPEAT: Final = re.compile(r"(.)\1{2,}")
#: Laughter in any of the languages: haha, hehe, jaja, jeje, ahah, kkkk, rsrs.
_LAUGH: Final = re.compile(r"^(?:(?:[hj][aeiou]){2,}h?|(?:a?h[aeiou]){2,}|k{2,}|(?:rs){1,})$")


@dataclass(frozen=True, slots=True)
class Features:
    """What scoring keeps of a text: numbers, never the words."""

    words: int
    phatic: bool
    question: bool
    link_only: bool
    automated: bool


def is_bot(person_id: str) -> bool:
    """Account names that announce automation: ``dependabot[bot]``, ``AutoModerator``, a
    handle ending in a separated ``bot`` (``ci-bot``, ``build_bot``, ``news.bot``) or a
    capitalised one (``RemindMeBot``). A name that merely ends in the letters (``talbot``,
    ``abbot``) is a person. Platforms' own bot flags travel as ``Interaction.actor_bot``."""
    raw = person_id.rsplit(":", 1)[-1].rsplit("/", 1)[-1].lstrip("@").split("@")[0]
    handle = raw.lower()
    return (
        "[bot]" in handle
        or handle in _BOT_NAMES
        or (handle.endswith(("-bot", "_bot", ".bot")) and len(handle) > 4)
        or (len(raw) > 3 and raw.endswith("Bot") and raw[-4].islower())
    )


#: what `_normalise` blanks out: everything but letters and numbers (Unicode categories L and
#: N: Python's ``\w`` without the underscore), spaces, apostrophes and plus signs
_NOT_KEPT: Final = re.compile(r"[^\w '+]|_")


def _normalise(without_links: str) -> str:
    """Mentions and links already removed: lower case, only letters, numbers, spaces, ``'``
    and ``+``, letters repeated more than twice squeezed (one regex, not a Python loop over
    the characters: a fifth of the cost, the same result for every code point)."""
    kept = _NOT_KEPT.sub(" ", without_links.lower())
    return " ".join(_REPEAT.sub(r"\1\1", kept).split())


def text_features(text: str) -> Features:
    stripped = _MENTION.sub(" ", text).strip()
    without_links = _URL.sub(" ", stripped).strip()
    norm = _normalise(without_links)
    words = _WORD.findall(norm)
    link_only = bool(_URL.search(stripped)) and not words
    tokens = norm.replace("+1", "plus 1").split()
    phatic = (
        not words  # emoji, punctuation or nothing
        or norm in _PHATIC_PHRASES
        or (
            len(tokens) <= 4
            and all(t in _PHATIC_TOKENS or t in ("plus", "1") or _LAUGH.match(t) for t in tokens)
        )
    )
    question = "?" in without_links or "¿" in without_links
    return Features(
        words=len(words),
        phatic=phatic and not link_only,
        question=question,
        link_only=link_only,
        automated=bool(_BOT_TEXT.search(text)),
    )


def call_weight(duration_s: float | None) -> float:
    """0 for a missed or very short call; rising with the log of the length; 1 from ~10 min."""
    if duration_s is None:
        return KIND_WEIGHT["call"]
    if duration_s <= SHORT_CALL_S:
        return 0.0
    return min(1.0, 0.3 + 0.7 * math.log(duration_s / SHORT_CALL_S) / math.log(60))


def fan_out_factor(interaction: Interaction) -> float:
    """Quality over quantity: an action addressed to many people, or from an account that
    broadcasts to a large audience, says less about any one relationship.

    Several recipients of one action divide by their square root (a reply keeps its full
    weight for the person answered: only its extra mentions are fanned out). An audience over
    100 followers lowers the weight logarithmically: 1k -> 0.5, 10k -> 0.33, 1M -> 0.2.
    """
    factor = 1.0
    if interaction.recipients and interaction.recipients > 1 and interaction.kind != "reply":
        factor /= math.sqrt(interaction.recipients)
    if interaction.audience and interaction.audience > 100:
        factor /= 1 + math.log10(interaction.audience / 100)
    return factor


def weight(interaction: Interaction, *, turn_taking: bool = False) -> float:
    """The meaningfulness of one interaction, in [0, 1]: the ``weight`` it was scored with
    where it entered ``interactions`` (its text dropped there, see `scored`), else scored
    now from what it carries.

    ``turn_taking``: the interaction continues a back-and-forth between the same two people
    in one thread (the previous turn there was the other person's), which counts more.
    """
    if interaction.weight is not None and not turn_taking:
        return interaction.weight
    return meaningfulness(interaction, turn_taking=turn_taking)


def scored(interaction: Interaction) -> Interaction:
    """The interaction as it goes onto ``interactions``: scored from its text (any ``weight``
    it came with is replaced) and without the text, which is needed for nothing else."""
    return interaction.model_copy(update={"weight": meaningfulness(interaction), "text": None})


def meaningfulness(interaction: Interaction, *, turn_taking: bool = False) -> float:
    """The weight computed from the interaction's kind, text, call length, fan-out and
    actor (never from a ``weight`` it carries)."""
    if interaction.actor_bot or is_bot(interaction.actor):
        return 0.0
    kind = interaction.kind
    w = call_weight(interaction.duration_s) if kind == "call" else KIND_WEIGHT[kind]
    if w == 0.0:
        return 0.0
    if interaction.text is not None and kind not in ("like", "share", "call"):
        f = text_features(interaction.text)
        if f.automated:
            return 0.0
        if f.phatic or f.link_only:
            return round(min(w, 0.05), 4)
        # one or two words are a reaction, not yet an exchange (0.7 x 0.35 < MEANINGFUL)
        effort = 0.35 if f.words <= 2 else 0.85 if f.words <= 6 else 1.0
        w *= effort
        if (f.question and f.words >= 3) or (interaction.in_reply_to and f.words >= 8):
            w += 0.15  # asks, or answers at length
    w *= fan_out_factor(interaction)
    if turn_taking:
        w *= 1.25

    return round(max(0.0, min(1.0, w)), 4)
