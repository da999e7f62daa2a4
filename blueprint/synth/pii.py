"""Generators of realistic PII values, for planting into synthetic posts.

Every value is valid for its type: phone numbers pass ``phonenumbers.is_valid_number``,
card numbers pass Luhn, Bitcoin addresses carry correct Base58Check or Bech32
checksums. A recognizer that validates, as a good one must, will therefore accept
every planted value; the sidecar gives the exact spans.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable

import phonenumbers

from blueprint.atproto import DID_PLC_ALPHABET
from blueprint.pii.checksums import b58check_encode, luhn_check_digit, segwit_encode

PII_TYPES: tuple[str, ...] = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "URL",
    "USERNAME",
    "DID",
    "IP_ADDRESS",
    "CREDIT_CARD",
    "CRYPTO",
    "AT_URI",
)

_B32 = DID_PLC_ALPHABET
_FIRST = ("alex", "sam", "jordan", "priya", "marc", "julie", "wei", "fatima", "liam", "chloe", "noah", "amira")
_LAST = ("tremblay", "smith", "nguyen", "singh", "roy", "macdonald", "chen", "gagnon", "wilson", "khan")
_MAIL_DOMAINS = ("gmail.com", "outlook.com", "proton.me", "yahoo.ca", "riding-office.ca", "union-local.org",
                 "example.com", "uottawa.ca")
_WEB_DOMAINS = ("cbc.ca", "www.theglobeandmail.com", "elections.ca", "338canada.com", "www.nanos.co",
                "globalnews.ca", "example.org", "substack.com", "www.youtube.com", "macleans.ca")
_URL_WORDS = ("news", "politics", "election", "poll", "housing", "climate", "budget", "debate", "tariffs")
_CUSTOM_TLDS = ("ca", "com", "org", "net", "news", "social", "dev")
_CA_AREA = ("416", "647", "437", "613", "343", "514", "438", "604", "778", "403", "587", "780", "902", "506",
            "306", "204", "709", "819")
_FOREIGN = ("US", "GB", "FR", "DE", "AU", "IE", "IN")


def random_did_plc(rng: random.Random) -> str:
    return "did:plc:" + "".join(rng.choice(_B32) for _ in range(24))


def custom_domain(rng: random.Random) -> str:
    labels = [rng.choice(_LAST) + rng.choice(("", "news", "writes", "ca", str(rng.randint(1, 99))))]
    if rng.random() < 0.3:
        labels.insert(0, rng.choice(_FIRST))
    return ".".join(labels + [rng.choice(_CUSTOM_TLDS)])


def bsky_handle(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST)}{rng.choice(_LAST)}{rng.randint(1, 999)}.bsky.social"


def email(rng: random.Random) -> str:
    sep = rng.choice((".", "_", "", "-"))
    num = str(rng.randint(1, 99)) if rng.random() < 0.4 else ""
    return f"{rng.choice(_FIRST)}{sep}{rng.choice(_LAST)}{num}@{rng.choice(_MAIL_DOMAINS)}"


def _valid_national(rng: random.Random, region: str) -> phonenumbers.PhoneNumber:
    example = phonenumbers.example_number(region)
    if example is None:  # pragma: no cover - every region used here has one
        raise RuntimeError(f"phonenumbers has no example number for {region}")
    length = len(str(example.national_number))
    prefix = str(example.national_number)[:2]
    for _ in range(1000):
        if region in ("CA", "US"):
            area = rng.choice(_CA_AREA) if region == "CA" else rng.choice(("212", "202", "617", "415", "312"))
            digits = area + str(rng.randint(2, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(6))
        else:
            digits = prefix + "".join(str(rng.randint(0, 9)) for _ in range(length - 2))
        num = phonenumbers.parse("+" + str(example.country_code) + digits)
        if phonenumbers.is_valid_number(num):
            return num
    raise RuntimeError(f"could not draw a valid {region} phone number")  # pragma: no cover


def phone(rng: random.Random) -> str:
    """A valid phone number in one of many national and international formats.

    Numbers without a country code are always North American, as a Canadian
    dataset's scrubber must assume a default region for them.
    """
    fmt = phonenumbers.PhoneNumberFormat
    style = rng.random()
    if style < 0.6:
        num = _valid_national(rng, "CA")
        nsn = str(num.national_number)
        area, mid, last = nsn[:3], nsn[3:6], nsn[6:]
        return rng.choice((
            phonenumbers.format_number(num, fmt.NATIONAL),  # (416) 555-0123
            phonenumbers.format_number(num, fmt.INTERNATIONAL),  # +1 416-555-0123
            phonenumbers.format_number(num, fmt.E164),  # +14165550123
            f"{area}-{mid}-{last}",
            f"{area}.{mid}.{last}",
            f"1-{area}-{mid}-{last}",
            f"+1 ({area}) {mid}-{last}",
        ))
    if style < 0.7:  # toll-free, checked like every other planted number
        for _ in range(1000):
            free, exchange, line = rng.choice(("800", "888", "877")), rng.randint(200, 999), rng.randint(1000, 9999)
            if phonenumbers.is_valid_number(phonenumbers.parse(f"+1{free}{exchange}{line}")):
                return f"1-{free}-{exchange}-{line}"
        raise RuntimeError("could not draw a valid toll-free number")  # pragma: no cover
    num = _valid_national(rng, rng.choice(_FOREIGN))
    return phonenumbers.format_number(num, rng.choice((fmt.INTERNATIONAL, fmt.E164)))


def url(rng: random.Random) -> str:
    domain = rng.choice(_WEB_DOMAINS)
    path = "/".join(rng.choice(_URL_WORDS) for _ in range(rng.randint(1, 3)))
    slug = f"{rng.choice(_URL_WORDS)}-{rng.randint(1000, 999999)}"
    tail = rng.choice(("", f"?utm_source=bsky&id={rng.randint(1, 9999)}", f"#section-{rng.randint(1, 9)}", ".html"))
    if domain.startswith("www.") and rng.random() < 0.4:
        return f"{domain}/{path}/{slug}{tail}"  # scheme-less, as people paste them
    return f"{rng.choice(('https', 'https', 'http'))}://{domain}/{path}/{slug}{tail}"


def username(rng: random.Random) -> str:
    """A handle without its leading '@': half bsky.social, half custom domains."""
    return bsky_handle(rng) if rng.random() < 0.5 else custom_domain(rng)


def did(rng: random.Random) -> str:
    if rng.random() < 0.8:
        return random_did_plc(rng)
    return "did:web:" + custom_domain(rng)


def ip_address(rng: random.Random) -> str:
    if rng.random() < 0.6:
        return str(ipaddress.IPv4Address(rng.randint(0x0B000000, 0xDF000000)))
    addr = ipaddress.IPv6Address((0x2001 << 112) | rng.getrandbits(112))
    if rng.random() < 0.5:
        # a compressible address, written the short way
        addr = ipaddress.IPv6Address((0x20010DB8 << 96) | rng.getrandbits(32))
        return addr.compressed
    return addr.exploded if rng.random() < 0.5 else addr.compressed


def credit_card(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.2:  # American Express: 15 digits, 4-6-5 grouping
        payload = rng.choice(("34", "37")) + "".join(str(rng.randint(0, 9)) for _ in range(12))
        digits = payload + str(luhn_check_digit(payload))
        groups = [digits[:4], digits[4:10], digits[10:]]
    else:
        start = "4" if kind < 0.6 else str(rng.randint(51, 55))
        payload = start + "".join(str(rng.randint(0, 9)) for _ in range(15 - len(start)))
        digits = payload + str(luhn_check_digit(payload))
        groups = [digits[i : i + 4] for i in range(0, 16, 4)]
    sep = rng.choice((" ", "-", ""))
    return sep.join(groups)


def crypto(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.3:  # legacy P2PKH
        return b58check_encode(b"\x00" + rng.randbytes(20))
    if kind < 0.45:  # P2SH
        return b58check_encode(b"\x05" + rng.randbytes(20))
    if kind < 0.7:  # native SegWit v0
        return segwit_encode("bc", 0, rng.randbytes(20))
    if kind < 0.75:  # Taproot, Bech32m
        return segwit_encode("bc", 1, rng.randbytes(32))
    return "0x" + rng.randbytes(20).hex()  # Ethereum


def at_uri(rng: random.Random) -> str:
    rkey = "".join(rng.choice("234567abcdefghijklmnopqrstuvwxyz") for _ in range(13))
    return f"at://{random_did_plc(rng)}/app.bsky.feed.post/{rkey}"


GENERATORS: dict[str, Callable[[random.Random], str]] = {
    "EMAIL_ADDRESS": email,
    "PHONE_NUMBER": phone,
    "URL": url,
    "USERNAME": username,
    "DID": did,
    "IP_ADDRESS": ip_address,
    "CREDIT_CARD": credit_card,
    "CRYPTO": crypto,
    "AT_URI": at_uri,
}

# Sentences around a planted value; "{v}" marks where it goes.
CONTEXTS: dict[str, tuple[str, ...]] = {
    "EMAIL_ADDRESS": ("Email me at {v} if you want to volunteer.", "Questions? {v}", "Send tips to {v}.",
                      "Contact the campaign office ({v}) for lawn signs."),
    "PHONE_NUMBER": ("Call the office at {v} to get a ride to the polls.", "Text {v} for lawn signs.",
                     "Our hotline is {v}.", "Phone bank number: {v}"),
    "URL": ("Full story: {v}", "Read more at {v}.", "Source: {v}", "Sign the petition ({v}) today."),
    "USERNAME": ("Great thread by @{v} on this.", "cc @{v}", "@{v} you should see this.",
                 "Thanks @{v}, agreed."),
    "DID": ("My account moved, new id is {v}.", "Report {v} for spam.", "Block list entry: {v}"),
    "IP_ADDRESS": ("The bot traffic all came from {v}.", "Server at {v} is down again.",
                   "Logged hits from {v} on the campaign site."),
    "CREDIT_CARD": ("Donated with card {v}, receipt never came.", "Oops wrong paste {v}",
                    "Why did my card {v} get charged twice?"),
    "CRYPTO": ("Donations: {v}", "Tips welcome at {v}.", "Send crypto to {v} to support the channel."),
    "AT_URI": ("Original post: {v}", "See {v} for context.", "Quoting {v} here."),
}
