"""Language tags of uploaded audio as BCP-47 (RFC 5646) tags, and names to show for them.

Containers carry ISO 639-2 codes ("fre", "fra", "ger"); HLS wants BCP-47, which
uses the two-letter ISO 639-1 code wherever one exists ("fr", "de"). A code
without a two-letter form (a rarer ISO 639-3 language) is valid BCP-47 as it is.
Anything that is not a well-formed tag is treated as no tag at all: it came from
an upload.
"""

from __future__ import annotations

import re

# ISO 639-1 code: (English name, ISO 639-2 codes, bibliographic and terminological).
LANGUAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "af": ("Afrikaans", ("afr",)), "ar": ("Arabic", ("ara",)),
    "be": ("Belarusian", ("bel",)), "bg": ("Bulgarian", ("bul",)),
    "bn": ("Bengali", ("ben",)), "ca": ("Catalan", ("cat",)),
    "cs": ("Czech", ("cze", "ces")), "cy": ("Welsh", ("wel", "cym")),
    "da": ("Danish", ("dan",)), "de": ("German", ("ger", "deu")),
    "el": ("Greek", ("gre", "ell")), "en": ("English", ("eng",)),
    "es": ("Spanish", ("spa",)), "et": ("Estonian", ("est",)),
    "eu": ("Basque", ("baq", "eus")), "fa": ("Persian", ("per", "fas")),
    "fi": ("Finnish", ("fin",)), "fr": ("French", ("fre", "fra")),
    "ga": ("Irish", ("gle",)), "gl": ("Galician", ("glg",)),
    "he": ("Hebrew", ("heb",)), "hi": ("Hindi", ("hin",)),
    "hr": ("Croatian", ("hrv",)), "hu": ("Hungarian", ("hun",)),
    "hy": ("Armenian", ("arm", "hye")), "id": ("Indonesian", ("ind",)),
    "is": ("Icelandic", ("ice", "isl")), "it": ("Italian", ("ita",)),
    "ja": ("Japanese", ("jpn",)), "ka": ("Georgian", ("geo", "kat")),
    "kk": ("Kazakh", ("kaz",)), "ko": ("Korean", ("kor",)),
    "la": ("Latin", ("lat",)), "lt": ("Lithuanian", ("lit",)),
    "lv": ("Latvian", ("lav",)), "mk": ("Macedonian", ("mac", "mkd")),
    "mn": ("Mongolian", ("mon",)), "ms": ("Malay", ("may", "msa")),
    "nb": ("Norwegian Bokmål", ("nob",)), "nl": ("Dutch", ("dut", "nld")),
    "nn": ("Norwegian Nynorsk", ("nno",)), "no": ("Norwegian", ("nor",)),
    "pl": ("Polish", ("pol",)), "pt": ("Portuguese", ("por",)),
    "ro": ("Romanian", ("rum", "ron")), "ru": ("Russian", ("rus",)),
    "sk": ("Slovak", ("slo", "slk")), "sl": ("Slovenian", ("slv",)),
    "sq": ("Albanian", ("alb", "sqi")), "sr": ("Serbian", ("srp",)),
    "sv": ("Swedish", ("swe",)), "sw": ("Swahili", ("swa",)),
    "ta": ("Tamil", ("tam",)), "te": ("Telugu", ("tel",)),
    "th": ("Thai", ("tha",)), "tr": ("Turkish", ("tur",)),
    "uk": ("Ukrainian", ("ukr",)), "ur": ("Urdu", ("urd",)),
    "vi": ("Vietnamese", ("vie",)), "zh": ("Chinese", ("chi", "zho")),
}
_TWO_LETTER = {three: two for two, (_, threes) in LANGUAGES.items() for three in threes}
# ISO 639-2 codes that name no language: undetermined, multiple, none, uncoded.
NO_LANGUAGE = frozenset({"und", "mul", "zxx", "mis"})
# language[-script][-region][-variant...]: letters and digits only, so safe in a playlist.
_TAG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8}){0,4}")
MAX_TAG = 35  # RFC 5646 §4.4.1: 35 characters hold any tag that matters


def bcp47(tag: str | None) -> str | None:
    """The BCP-47 form of a container's language tag; None for none, "und" or garbage."""
    if tag is None:
        return None
    tag = tag.strip().replace("_", "-")
    if len(tag) > MAX_TAG or not _TAG.fullmatch(tag):
        return None
    primary, *subtags = tag.split("-")
    primary = primary.lower()
    if primary in NO_LANGUAGE:
        return None
    return "-".join([_TWO_LETTER.get(primary, primary), *(_cased(s) for s in subtags)])


def language_name(tag: str | None) -> str | None:
    """English name of a BCP-47 tag's language ("fr-CA" -> "French"), when known."""
    if tag is None:
        return None
    entry = LANGUAGES.get(tag.split("-")[0])
    return entry[0] if entry else None


def _cased(subtag: str) -> str:
    # RFC 5646 §2.1.1: scripts in title case, regions in upper case, the rest lower.
    if len(subtag) == 4 and subtag.isalpha():
        return subtag.title()
    if len(subtag) == 2 and subtag.isalpha():
        return subtag.upper()
    return subtag.lower()
