"""The languages customers write to us in, and telling them apart.

A large share of field-service customers in the US write in Spanish. Intake reads the language of
each customer's message, keeps it on the ticket, and every message to that customer is written
from the template in that language when one exists (English otherwise).

Telling English from Spanish in a text message needs no model: the short function words of each
language ("the, is, my, and" against "el, la, que, mi, por") are frequent in the shortest
message and rare in the other language. A message with too few of either (an address, "ok",
"1") says nothing, and the caller keeps what it knew.
"""

from __future__ import annotations

import re
import unicodedata

ENGLISH = "en"
SPANISH = "es"
LANGUAGES = ((ENGLISH, "English"), (SPANISH, "Spanish"))
LANGUAGE_CODES = frozenset(code for code, _name in LANGUAGES)

# Words frequent in one language and rare in the other, accents folded ("está" is "esta"). Words
# both share ("no", "a", "me", "son") and words of addresses ("de la Playa", "San", "Del Mar")
# are left out.
_SPANISH_WORDS = frozenset(
    [
        "el",
        "la",
        "los",
        "las",
        "del",
        "que",
        "por",
        "para",
        "una",
        "un",
        "es",
        "esta",
        "estan",
        "esto",
        "eso",
        "mi",
        "mis",
        "su",
        "sus",
        "nos",
        "con",
        "pero",
        "muy",
        "tengo",
        "tiene",
        "tenemos",
        "necesito",
        "necesitamos",
        "puede",
        "pueden",
        "podemos",
        "puedo",
        "quiero",
        "hay",
        "hola",
        "gracias",
        "favor",
        "buenas",
        "buenos",
        "dias",
        "tardes",
        "noches",
        "porque",
        "cuando",
        "donde",
        "como",
        "tambien",
        "ya",
        "se",
        "le",
        "lo",
        "y",
        "o",
        "al",
        "hoy",
        "manana",
        "semana",
        "puerta",
        "cerradura",
        "chapa",
        "llave",
        "vidrio",
        "ayuda",
        "urgente",
        "ahorita",
        "casa",
        "tienda",
        "oficina",
        "negocio",
        "estoy",
        "somos",
        "soy",
        "fue",
        "cierra",
        "abre",
        "funciona",
        "roto",
        "rota",
        "quebrado",
        "quebrada",
        "no",
        "se",
        "xfa",
        "porfa",
        "pq",
        "q",
        "tmb",
    ]
)
_ENGLISH_WORDS = frozenset(
    [
        "the",
        "is",
        "are",
        "was",
        "were",
        "my",
        "our",
        "your",
        "we",
        "you",
        "i",
        "it",
        "its",
        "and",
        "to",
        "of",
        "for",
        "with",
        "this",
        "that",
        "please",
        "can",
        "could",
        "would",
        "will",
        "wont",
        "cant",
        "dont",
        "doesnt",
        "isnt",
        "have",
        "has",
        "need",
        "needs",
        "get",
        "door",
        "lock",
        "glass",
        "broken",
        "today",
        "tomorrow",
        "thanks",
        "thank",
        "hi",
        "hello",
        "morning",
        "afternoon",
        "be",
        "been",
        "at",
        "on",
        "in",
        "from",
        "by",
        "an",
        "or",
        "but",
        "not",
        "just",
        "stuck",
        "open",
        "close",
        "closed",
        "store",
        "office",
    ]
)
# Marks only Spanish writes: ñ, ¿, ¡ and the acute vowels (accents are often left out, so
# they add weight but are not needed).
_SPANISH_MARKS_RE = re.compile("[\u00f1\u00bf\u00a1\u00e1\u00e9\u00ed\u00f3\u00fa]", re.IGNORECASE)
_WORD_RE = re.compile(r"[a-z]+")
# How many marker words it takes before a text is said to be in a language at all.
MIN_WORDS = 2


def _folded_words(text: str) -> list[str]:
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).replace("'", "").replace("\u2019", "")
    return _WORD_RE.findall(text)


def language_detect(text: str) -> str | None:
    """ "es" or "en" for a text clearly in one of them; None when it says too little to tell."""
    words = _folded_words(text or "")
    spanish = sum(1 for w in words if w in _SPANISH_WORDS)
    english = sum(1 for w in words if w in _ENGLISH_WORDS)
    spanish += min(2, len(_SPANISH_MARKS_RE.findall(text or "")))
    if max(spanish, english) < MIN_WORDS:
        return None
    # "hola! the patio door wont close" is English with a greeting: Spanish must clearly lead.
    if spanish >= 1.5 * english + 1:
        return SPANISH
    if english >= spanish:
        return ENGLISH
    return None


def language_clean(value: object) -> str:
    """A language code we write in ("en" for anything else)."""
    code = str(value or "").strip().lower()[:2]
    return code if code in LANGUAGE_CODES else ENGLISH
