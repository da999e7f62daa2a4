"""PII recognizers: exact spans per type, precision on clean political text, recall on planted PII."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from blueprint.errors import BadInputError
from blueprint.pii import PII_TYPES, Scrubber, Span, recognizers, resolve_overlaps
from blueprint.pii.evaluation import precision_recall, read_labelled

DATA = Path(__file__).parent / "data"
REC = recognizers("CA")


def found(kind: str, text: str) -> list[str]:
    """What one recognizer alone matches, as strings."""
    return [text[a:b] for a, b in REC[kind].find(text)]


# (type, text, exact matches expected from that type's recognizer)
TABLE = [
    ("EMAIL_ADDRESS", "mail jane.doe@example.com now", ["jane.doe@example.com"]),
    ("EMAIL_ADDRESS", "(a+tag@sub.example.co.uk).", ["a+tag@sub.example.co.uk"]),
    ("EMAIL_ADDRESS", "UPPER@EXAMPLE.CA", ["UPPER@EXAMPLE.CA"]),
    ("EMAIL_ADDRESS", "o'brien@example.ie", ["o'brien@example.ie"]),
    ("EMAIL_ADDRESS", "user@localhost and a@b.notatld", []),
    ("EMAIL_ADDRESS", "@alice.bsky.social is a handle", []),
    ("PHONE_NUMBER", "call (416) 555-2671 today", ["(416) 555-2671"]),
    ("PHONE_NUMBER", "613-555-0143 or 604.555.0198", ["613-555-0143", "604.555.0198"]),
    ("PHONE_NUMBER", "+44 20 7946 0958 and +33 1 42 68 53 00", ["+44 20 7946 0958", "+33 1 42 68 53 00"]),
    ("PHONE_NUMBER", "toll free 1-800-463-6868.", ["1-800-463-6868"]),
    ("PHONE_NUMBER", "+14165550123", ["+14165550123"]),
    ("PHONE_NUMBER", "Phone bank: (778) 541-7222 #1u", ["(778) 541-7222"]),  # a hashtag is no extension
    ("PHONE_NUMBER", "on 2025-04-16 at 9:30, $2,150, 62.5%, Bill C-69", []),
    ("URL", "see https://www.cbc.ca/news/a-b?x=1&y=2.", ["https://www.cbc.ca/news/a-b?x=1&y=2"]),
    ("URL", "(www.change.org/p/stop)", ["www.change.org/p/stop"]),
    ("URL", "go to elections.ca today", ["elections.ca"]),
    ("URL", "cbc.ca/news/politics/1.234 is it", ["cbc.ca/news/politics/1.234"]),
    ("URL", "HTTP://EXAMPLE.COM/PATH", ["HTTP://EXAMPLE.COM/PATH"]),
    ("URL", "https://en.wikipedia.org/wiki/Foo_(bar) yes", ["https://en.wikipedia.org/wiki/Foo_(bar)"]),
    ("URL", "e.g. this, i.e. that, U.S. tariffs, p.m. ET, today.It was, Mr.Smith", []),
    ("URL", "jane@example.com", []),
    ("USERNAME", "thanks @alice.bsky.social!", ["alice.bsky.social"]),
    ("USERNAME", "cc @news.example.ca.", ["news.example.ca"]),
    ("USERNAME", "(@jordan-lee.bsky.social)", ["jordan-lee.bsky.social"]),
    ("USERNAME", "@Carney @ the rally, @PierrePoilievre", []),
    ("USERNAME", "jane@example.com", []),
    ("USERNAME", "@x." + "a" * 250 + ".com", []),  # longer than 253 characters
    ("DID", "spam from did:plc:ewvi7nxzyoun6zhxrhs64oiz.", ["did:plc:ewvi7nxzyoun6zhxrhs64oiz"]),
    ("DID", "did:web:jane.example.com moved", ["did:web:jane.example.com"]),
    ("DID", "did:plc:short is not one", []),
    ("AT_URI", "at://did:plc:z72i7hdynmk6r22z27h6tvur/app.bsky.feed.post/3kgxuq2vjyc2a.",
     ["at://did:plc:z72i7hdynmk6r22z27h6tvur/app.bsky.feed.post/3kgxuq2vjyc2a"]),
    ("AT_URI", "at://alice.bsky.social", ["at://alice.bsky.social"]),
    ("IP_ADDRESS", "from 203.0.113.45, again", ["203.0.113.45"]),
    ("IP_ADDRESS", "2001:db8::1 and fe80::1ff:fe23:4567:890a", ["2001:db8::1", "fe80::1ff:fe23:4567:890a"]),
    ("IP_ADDRESS", "999.1.1.1, 1.2.3, 12:30:45, 9:30, v1.2.3.4.5", []),
    ("CREDIT_CARD", "card 4111 1111 1111 1111 ok", ["4111 1111 1111 1111"]),
    ("CREDIT_CARD", "5500-0000-0000-0004 and 378282246310005", ["5500-0000-0000-0004", "378282246310005"]),
    ("CREDIT_CARD", "3714 496353 98431", ["3714 496353 98431"]),
    ("CREDIT_CARD", "4111 1111 1111 1112 fails Luhn; 1234567890123452 has no issuer; 4111-1111 1111-1111 mixes", []),
    ("CRYPTO", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", ["1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"]),
    ("CRYPTO", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy.", ["3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"]),
    ("CRYPTO", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", ["bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"]),
    ("CRYPTO", "0x742d35Cc6634C0532925a3b844Bc454e4438f44e", ["0x742d35Cc6634C0532925a3b844Bc454e4438f44e"]),
    ("CRYPTO", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb bad checksum; bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", []),
]


@pytest.mark.parametrize("kind, text, expected", TABLE, ids=[f"{t[0]}-{i}" for i, t in enumerate(TABLE)])
def test_recognizer_exact_spans(kind, text, expected):
    assert found(kind, text) == expected


# one value of each type, written plainly, that only its own type's recognizer may claim
ONE_OF_EACH = {
    "AT_URI": "at://did:plc:z72i7hdynmk6r22z27h6tvur/app.bsky.feed.post/3kgxuq2vjyc2a",
    "EMAIL_ADDRESS": "jane.doe@example.com",
    "URL": "https://www.cbc.ca/news",
    "USERNAME": "alice.bsky.social",
    "DID": "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
    "CRYPTO": "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
    "CREDIT_CARD": "4111 1111 1111 1111",
    "IP_ADDRESS": "203.0.113.45",
    "PHONE_NUMBER": "(416) 555-2671",
}


@pytest.mark.parametrize("kind", sorted(ONE_OF_EACH))
def test_each_type_is_found_by_its_own_recognizer_and_tagged_with_it(kind):
    value = ONE_OF_EACH[kind]
    text = f"note @{value} ok" if kind == "USERNAME" else f"note {value} ok"
    assert found(kind, text) == [value]
    spans = Scrubber().spans(text)
    assert [(text[s.start:s.end], s.type) for s in spans] == [(value, kind)]


def test_every_type_the_scrubber_knows_is_exercised():
    assert sorted(ONE_OF_EACH) == sorted(PII_TYPES) == sorted(REC)


def test_scrub_replaces_with_tags_and_keeps_the_at_sign():
    s = Scrubber()
    text = "Email jane@example.com, cc @alice.bsky.social, see at://did:plc:z72i7hdynmk6r22z27h6tvur/app.bsky.feed.post/x"
    assert s.scrub(text) == "Email <EMAIL_ADDRESS>, cc @<USERNAME>, see <AT_URI>"
    assert s.scrub("Carney and Poilievre debate Bill C-69 on April 16, 2025 (3.5%).") == \
        "Carney and Poilievre debate Bill C-69 on April 16, 2025 (3.5%)."
    assert s.scrub(None) is None and s.scrub("") == ""


def test_overlaps_resolve_to_the_longest_span():
    spans = [Span(0, 10, "URL"), Span(2, 6, "USERNAME"), Span(8, 20, "EMAIL_ADDRESS"), Span(30, 35, "DID")]
    # the e-mail (12 characters) beats the URL it overlaps; the handle inside the URL survives the URL
    assert resolve_overlaps(spans) == [Span(2, 6, "USERNAME"), Span(8, 20, "EMAIL_ADDRESS"), Span(30, 35, "DID")]


def test_types_can_be_chosen():
    s = Scrubber(["EMAIL_ADDRESS"])
    assert s.scrub("jane@example.com 8.8.8.8") == "<EMAIL_ADDRESS> 8.8.8.8"
    with pytest.raises(BadInputError, match="must be one of 'AT_URI'") as err:
        Scrubber(["PERSON"])
    assert err.value.field == "types"


def labelled_posts(name: str = "pii_posts.txt"):
    return read_labelled(DATA / name)


def score(pairs):
    return precision_recall(pairs)


def test_labelled_set_precision_and_recall():
    posts = labelled_posts()
    assert len(posts) >= 200
    assert sum(1 for _, s in posts if not s) >= 100  # clean political posts that must stay untouched
    assert {t for _, s in posts for *_, t in s} == set(PII_TYPES)
    r = score(posts)
    assert r["all"]["precision"] >= 0.98, r
    assert all(v["recall"] >= 0.95 for v in r.values()), r
    clean = [t for t, s in posts if not s]
    assert all(Scrubber().scrub(t) == t for t in clean)


def test_synthetic_planted_pii_recall(corpus):
    malformed = {(r["file"], r["line"]) for r in map(orjson.loads, (corpus / "_meta/corrupt_lines.jsonl").read_bytes()
                                                                       .splitlines())}
    texts = {}
    for f in sorted(corpus.rglob("jetstream*.jsonl")):
        rel = str(f.relative_to(corpus))
        for i, raw in enumerate(f.read_bytes().splitlines(), start=1):
            if (rel, i) in malformed:
                continue  # a planted malformed line: the ingest tests read those
            rec = orjson.loads(raw).get("commit", {}).get("record") or {}
            if isinstance(rec.get("text"), str):
                texts[(rel, i)] = rec["text"]
    want: dict = {}
    for row in map(orjson.loads, (corpus / "_meta/planted_pii.jsonl").read_bytes().splitlines()):
        want.setdefault((row["file"], row["line"]), set()).add((row["start"], row["end"], row["type"]))
    r = score([(t, want.get(k, set())) for k, t in texts.items()])
    assert all(r[t]["recall"] >= 0.99 for t in PII_TYPES), r
    assert r["all"]["precision"] >= 0.99, r


def test_evasion_set_recall_precision_and_clean_lines():
    posts = labelled_posts("pii_evasions.txt")
    evasions = [p for p in posts if p[1]]
    clean = [t for t, s in posts if not s]
    assert len(evasions) >= 60 and len(clean) >= 60
    assert {t for _, s in evasions for *_, t in s} == set(PII_TYPES)
    r = score(posts)
    assert all(v["recall"] >= 0.95 for v in r.values()), r
    assert r["all"]["precision"] >= 0.98, r
    untouched = sum(Scrubber().scrub(t) == t for t in clean) / len(clean)
    assert untouched >= 0.98, [t for t in clean if Scrubber().scrub(t) != t]


@pytest.mark.parametrize("text,want", [
    ("jane.doe\u200b@example.com", "<EMAIL_ADDRESS>"),
    ("jane\uff20example.com", "<EMAIL_ADDRESS>"),
    ("jane [at] example [dot] com", "<EMAIL_ADDRESS>"),
    ("alex dot morgan at gmail dot com", "<EMAIL_ADDRESS>"),
    ("jo(at)campaign-hq.ca", "<EMAIL_ADDRESS>"),
    ("name AT domain DOT ca", "<EMAIL_ADDRESS>"),
    ("example[.]com/phish", "<URL>"),
    ("hxxps://bad.example.net/x", "<URL>"),
    ("192[.]0[.]2[.]1", "<IP_ADDRESS>"),
    ("4111\u00a01111\u00a01111\u00a01111", "<CREDIT_CARD>"),
    ("we met at noon at the rally", "we met at noon at the rally"),
    ("at 3 dot 30", "at 3 dot 30"),
    ("a dot com bubble", "a dot com bubble"),
])
def test_the_issues_examples(text, want):
    text = text.encode().decode("unicode_escape") if "\\u" in text else text
    assert Scrubber().scrub(text) == want


def test_normalised_matches_map_to_exact_original_spans():
    from blueprint.pii.view import normalise, refang

    zw, nb = "\u200b", "\u00a0"
    cases = [
        # at the very start and end, hidden characters inside the match removed with it
        (f"jane{zw}@example.com", [(0, 17, "EMAIL_ADDRESS")]),
        (f"x \U0001f389 jane{zw}@example.com \U0001f389", [(4, 21, "EMAIL_ADDRESS")]),
        (f"\U0001f468\u200d\U0001f469 call 416{nb}555{nb}2671{zw}", [(9, 21, "PHONE_NUMBER")]),
        ("\uff4a\uff41\uff4e\uff45@example.com!", [(0, 16, "EMAIL_ADDRESS")]),
        ("see hxxp[:]//evil[.]example[.]org/a end", [(4, 35, "URL")]),
    ]
    s = Scrubber()
    for text, want in cases:
        got = [(x.start, x.end, x.type) for x in s.spans(text)]
        assert got == want, (text, got, [text[a:b] for a, b, _ in got])
        # the replacement leaves no trace of the original span
        out = s.scrub(text)
        for a, b, t in want:
            assert text[a:b] not in out and f"<{t}>" in out
    # the view maps every character back to its origin: a=0, zero-width=1 (dropped), b=2, fullwidth c=3,
    # " [.] "=4..8 (one ".", spaces swallowed), d=9
    v = refang(normalise(f"a{zw}b\uff43 [.] d"))
    assert v.text == "abc.d"
    assert [v.original(i, i + 1) for i in range(len(v.text))] == [(0, 1), (2, 3), (3, 4), (4, 9), (9, 10)]
    assert v.original(0, len(v.text)) == (0, 10)


def test_the_fast_check_knows_every_character_the_normalised_view_rewrites():
    import sys
    import unicodedata

    from blueprint.pii.view import _HYPHENS, _SPECIAL

    missed = [hex(cp) for cp in range(sys.maxunicode + 1)
              if (unicodedata.category(chr(cp)) in ("Cf", "Zs") and cp != 0x20 or chr(cp) in _HYPHENS)
              and unicodedata.is_normalized("NFKC", chr(cp)) and not _SPECIAL.search(chr(cp))]
    assert not missed
