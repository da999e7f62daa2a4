"""Checksums of the identifiers that PII recognizers validate and the synthetic corpus plants.

One implementation serves both sides: :mod:`blueprint.synth` builds card numbers and
wallet addresses that pass these checks, and :mod:`blueprint.pii.recognizers`
accepts a match only when it passes them.
"""

from __future__ import annotations

import hashlib

from blueprint.atproto import base_decode

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_INDEX = {c: i for i, c in enumerate(_BECH32)}
_BECH32M_CONST = 0x2BC830A3


# --- Luhn (payment cards) ---------------------------------------------------


def luhn_check_digit(payload: str) -> int:
    """Return the digit that makes ``payload + digit`` pass the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(payload)):
        d = int(ch)
        if i % 2 == 0:  # these positions are doubled once the check digit is appended
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return (10 - total % 10) % 10


def luhn_valid(digits: str) -> bool:
    """True when a string of digits passes the Luhn check."""
    if len(digits) < 2 or not digits.isdigit():
        return False
    return luhn_check_digit(digits[:-1]) == int(digits[-1])


# --- Base58Check (legacy Bitcoin addresses) ---------------------------------


def _double_sha256(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def b58check_encode(payload: bytes) -> str:
    """Encode ``payload`` (version byte included) with its 4-byte checksum in Base58."""
    data = payload + _double_sha256(payload)[:4]
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(_B58[r])
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(out))


def b58check_decode(text: str) -> bytes | None:
    """Return the payload of a Base58Check string, or None when the checksum fails."""
    n = base_decode(text, _B58_INDEX)
    if n is None:
        return None
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    pad = len(text) - len(text.lstrip("1"))
    data = b"\0" * pad + body
    if len(data) < 5:
        return None
    payload, check = data[:-4], data[-4:]
    return payload if _double_sha256(payload)[:4] == check else None


# --- Bech32 / Bech32m (SegWit Bitcoin addresses, BIP 173 and BIP 350) --------


def _polymod(values: list[int]) -> int:
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            if (top >> i) & 1:
                chk ^= gen[i]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convertbits(data: bytes, frombits: int, tobits: int) -> list[int]:
    acc = bits = 0
    out = []
    maxv = (1 << tobits) - 1
    for value in data:
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if bits:
        out.append((acc << (tobits - bits)) & maxv)
    return out


def segwit_encode(hrp: str, version: int, program: bytes) -> str:
    """Encode a SegWit address: Bech32 for version 0, Bech32m for later versions."""
    const = 1 if version == 0 else _BECH32M_CONST
    data = [version] + _convertbits(program, 8, 5)
    polymod = _polymod(_hrp_expand(hrp) + data + [0] * 6) ^ const
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_BECH32[d] for d in data + checksum)


def segwit_valid(text: str) -> bool:
    """True when ``text`` is a Bech32 (v0) or Bech32m (v1+) SegWit address with a good checksum."""
    if text.lower() != text and text.upper() != text:
        return False  # mixed case is forbidden by BIP 173
    text = text.lower()
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text) or len(text) > 90:
        return False
    hrp, rest = text[:pos], text[pos + 1 :]
    try:
        data = [_BECH32_INDEX[c] for c in rest]
    except KeyError:
        return False
    const = _polymod(_hrp_expand(hrp) + data)
    version = data[0]
    if version > 16:
        return False
    return const == (1 if version == 0 else _BECH32M_CONST)
