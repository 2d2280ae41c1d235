#!/usr/bin/env python3
"""Regenerates crates/core/tests/data/phone_corpus.tsv: phone numbers as people write them, with
what Google's libphonenumber makes of each (valid or not, and the E.164 form).

The reference is the PyPI package `phonenumbers` (David Drysdale's Python port of
libphonenumber, Apache License 2.0). Pin it to the metadata release that dialtone's Rust crate
(`rlibphonenumber`, see crates/core/src/phone.rs) embeds, so that a row differs only when the
code does, not because a carrier range was added between two metadata releases:

    python3 -m venv /tmp/venv-phone
    /tmp/venv-phone/bin/pip install phonenumbers==9.0.42
    /tmp/venv-phone/bin/python scripts/gen_phone_corpus.py

then run `cargo test -p dialtone-core --test phone_corpus` and commit the TSV. When the Rust
crate moves to newer metadata, bump PINNED below to the same release and regenerate.

The output is reproducible: a fixed seed drives every random choice, regions and types are
walked in a fixed order, and the header records the library version. The tests never need
Python or the network: the TSV is the checked-in artifact.

What the rows cover, per region (see REGIONS):
  * valid numbers of every type the region's metadata has (fixed line, mobile, toll free, ...):
    the library's example number and digit mutations of it that stay valid;
  * national numbers whose first digits are the country code (IN 91..., RU 7..., IT 39...),
    the case a parser that guesses "is this a country code?" gets wrong;
  * each written as E.164, international format, national format (with the trunk prefix:
    0, 8 for RU, 1 for NANP), bare national digits, with the international dialling prefix of
    another region (00, 011, 810, ...), with carrier codes where the region has them (BR, AR),
    and with formatting noise (spaces, dashes, dots, parentheses, slashes);
  * invalid numbers: truncated, extended, digit-mutated, read in the wrong region, and a few
    strings that are not phone numbers at all.
The expected value is always the library's own answer, never a hand-written one.
"""

import pathlib
import random
import sys

import phonenumbers
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumberFormat, PhoneNumberType

PINNED = "9.0.42"
SEED = 20261201
REPO = pathlib.Path(__file__).resolve().parent.parent
OUT = REPO / "crates" / "core" / "tests" / "data" / "phone_corpus.tsv"

# The twenty (dialtone's markets and the countries whose numbering trips parsers),
# then more so that every numbering style is present: NANP, closed and open plans, trunk
# prefixes 0/8/1/none, variable-length plans (DE, AT), carrier codes (BR, CO), Arabic script.
REGIONS = [
    "IN", "RU", "IT", "BR", "MX", "ID", "PH", "NG", "ZA", "AE",
    "DE", "FR", "GB", "AU", "US", "CA", "AR", "TR", "VN", "JP",
    "ES", "NL", "BE", "CH", "AT", "PL", "SE", "IE", "PT", "GR",
    "KZ", "UA", "IL", "EG", "SA", "PK", "BD", "KE", "CN", "KR",
    "TH", "MY", "SG", "NZ", "CO", "CL", "PE", "SM", "VA", "HU",
]

TYPES = [
    PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.TOLL_FREE,
    PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST, PhoneNumberType.VOIP,
    PhoneNumberType.PERSONAL_NUMBER, PhoneNumberType.UAN,
]

# Regions whose international dialling prefix differs from 00, to write numbers the way a
# caller there would dial abroad.
DIAL_FROM = ["US", "RU", "JP", "AU", "KR", "GB", "BR", "IL"]

# Strings a spreadsheet column really contains that are not numbers.
GARBAGE = ["hello", "n/a", "+", "--", "()", "0", "00", "+0", "+999 123 4567", "1-800-FLOWERS",
           "phone", "#REF!", "1e+10", "+ 1", "9.18809768E9"]


def outcome(raw, region):
    """The library's verdict: (valid, e164) — e164 is "" when invalid or unparseable."""
    try:
        n = phonenumbers.parse(raw, region)
    except NumberParseException:
        return False, ""
    if not phonenumbers.is_valid_number(n):
        return False, ""
    return True, phonenumbers.format_number(n, PhoneNumberFormat.E164)


def noisy(digits, rng):
    """Writes a digit string with the separators people type: groups split by space, dash,
    dot or slash, sometimes one group in parentheses."""
    out, i = [], 0
    while i < len(digits):
        size = rng.choice([2, 3, 3, 4])
        out.append(digits[i:i + size])
        i += size
    if len(out) > 2 and rng.random() < 0.4:
        out[0] = "(" + out[0] + ")"
    sep = rng.choice([" ", "-", ".", " - ", "/", ""])
    return sep.join(out) if sep else " ".join(out)


def mutate(nsn, rng, keep):
    """Replaces digits after the first `keep` with random ones."""
    digits = list(nsn)
    for _ in range(rng.randint(1, 4)):
        pos = rng.randrange(min(keep, len(digits) - 1), len(digits))
        digits[pos] = str(rng.randrange(10))
    return "".join(digits)


def valid_numbers(region, rng):
    """National significant numbers valid in `region`: examples of each type and mutations."""
    found = []
    for t in TYPES:
        ex = phonenumbers.example_number_for_type(region, t)
        if ex is None:
            continue
        nsn = phonenumbers.national_significant_number(ex)
        found.append(nsn)
        tries, kept = 0, 0
        while kept < 1 and tries < 60:
            tries += 1
            cand = mutate(nsn, rng, keep=2)
            n = phonenumbers.parse("+" + str(ex.country_code) + cand, None)
            if phonenumbers.is_valid_number_for_region(n, region) and cand not in found:
                found.append(cand)
                kept += 1
    return found


def cc_prefixed_numbers(region, rng):
    """Valid national numbers that begin with the digits of the country code (IN 91...)."""
    meta = PhoneMetadata.metadata_for_region(region)
    cc = str(meta.country_code)
    lengths = set()
    for t in TYPES:
        ex = phonenumbers.example_number_for_type(region, t)
        if ex is not None:
            lengths.add(len(phonenumbers.national_significant_number(ex)))
    found = []
    for length in sorted(lengths):
        if length <= len(cc):
            continue
        for _ in range(400):
            cand = cc + "".join(str(rng.randrange(10)) for _ in range(length - len(cc)))
            n = phonenumbers.parse("+" + cc + cand, None)
            if phonenumbers.is_valid_number_for_region(n, region) and cand not in found:
                found.append(cand)
                if len(found) >= 2:
                    return found
    return found


def writings(nsn, region, rng):
    """The ways a person writes one number, each with the default region to read it in."""
    meta = PhoneMetadata.metadata_for_region(region)
    cc = meta.country_code
    n = phonenumbers.parse("+" + str(cc) + nsn, None)
    intl = phonenumbers.format_number(n, PhoneNumberFormat.INTERNATIONAL)
    natl = phonenumbers.format_number(n, PhoneNumberFormat.NATIONAL)
    out = [
        ("+" + str(cc) + nsn, rng.choice(REGIONS)),
        (intl, region),
        (intl, rng.choice(REGIONS)),
        (natl, region),
        (nsn, region),
        (noisy(nsn, rng), region),
        ("+" + str(cc) + " " + noisy(nsn, rng), rng.choice(REGIONS)),
    ]
    if meta.national_prefix:
        out.append((meta.national_prefix + nsn, region))
        out.append((meta.national_prefix + " " + noisy(nsn, rng), region))
    # Dialled from abroad, with that country's international prefix (00, 011, 810, ...).
    home = rng.choice([r for r in DIAL_FROM if r != region])
    out.append((phonenumbers.format_out_of_country_calling_number(n, home), home))
    # Carrier selection codes (BR operadora, CO, ...): only where the region formats them.
    if any(f.domestic_carrier_code_formatting_rule for f in meta.number_format):
        with_cc = phonenumbers.format_national_number_with_carrier_code(n, "15")
        if with_cc != natl:
            out.append((with_cc, region))
    return out


def invalid_writings(nsn, region, rng):
    """Near misses of a valid number: the library decides whether each is still valid."""
    cc = PhoneMetadata.metadata_for_region(region).country_code
    other = rng.choice([r for r in REGIONS if PhoneMetadata.metadata_for_region(r).country_code != cc])
    return [
        (nsn[:-1], region),
        (nsn[:-2], region),
        (nsn + str(rng.randrange(10)), region),
        ("+" + str(cc) + nsn + str(rng.randrange(10)) + str(rng.randrange(10)), region),
        ("+" + str(cc) + nsn[:-3], other),
        (mutate(nsn, rng, keep=0), region),
        (nsn, other),
        ("+" + str(cc) + " " + mutate(nsn, rng, keep=0), other),
    ]


def main():
    if phonenumbers.__version__ != PINNED:
        sys.exit(f"phonenumbers {phonenumbers.__version__} is installed; this corpus is pinned to {PINNED} "
                 f"(the metadata release the Rust crate embeds): pip install phonenumbers=={PINNED}")
    rng = random.Random(SEED)
    rows, seen = [], set()

    def add(raw, region, kind):
        raw = raw.strip()
        if not raw or "\t" in raw or (raw, region) in seen:
            return
        seen.add((raw, region))
        valid, e164 = outcome(raw, region)
        rows.append((raw, region, "true" if valid else "false", e164, kind))

    for region in REGIONS:
        numbers = valid_numbers(region, rng)
        prefixed = cc_prefixed_numbers(region, rng)
        # The bare national digits always (the form that trips parsers), then a sample of the
        # other writings so every region gets every style without the file growing huge.
        for kind, group in (("written", numbers), ("cc-digits", prefixed)):
            for nsn in group:
                ways = writings(nsn, region, rng)
                add(nsn, region, kind)
                for raw, reg in rng.sample(ways, min(5, len(ways))):
                    add(raw, reg, kind)
        for nsn in numbers[::3] + prefixed[:1]:
            for raw, reg in rng.sample(invalid_writings(nsn, region, rng), 6):
                add(raw, reg, "near-miss")
        # Digits in other scripts: Arabic-Indic and full-width forms that the library folds.
        if numbers:
            nsn = numbers[0]
            add(nsn.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")), region, "script")
            add(nsn.translate(str.maketrans("0123456789", "０１２３４５６７８９")), region, "script")
    for raw in GARBAGE:
        add(raw, rng.choice(REGIONS), "garbage")

    # The issue's own examples, verbatim.
    for raw, region in [("9188097679", "IN"), ("+7 812 315-00-01", "RU"), ("8 (800) 555-35-35", "RU"),
                        ("391 231 2312", "IT"), ("+33 1 42 68 53 00", "FR"), ("+33 (0)1 42 68 53 00", "FR"),
                        ("+33 1 42 68 53 00", "US")]:
        add(raw, region, "issue")

    OUT.parent.mkdir(parents=True, exist_ok=True)
    valid = sum(1 for r in rows if r[2] == "true")
    with OUT.open("w", encoding="utf-8", newline="\n") as f:
        f.write("# Phone-number corpus: what libphonenumber makes of numbers as people write them.\n")
        f.write(f"# Generated by scripts/gen_phone_corpus.py with phonenumbers {phonenumbers.__version__} "
                f"(PyPI; libphonenumber metadata {phonenumbers.__version__}), seed {SEED}. Do not edit by hand.\n")
        f.write(f"# {len(rows)} rows ({valid} valid, {len(rows) - valid} invalid) over {len(REGIONS)} regions.\n")
        f.write("# Columns (tab-separated): raw input, default region, valid, E.164 (empty when invalid), kind.\n")
        f.write("# Comments end at the header row below; after it a leading # is data (a spreadsheet's #REF!).\n")
        f.write("raw\tregion\tvalid\te164\tkind\n")
        for r in rows:
            f.write("\t".join(r) + "\n")
    print(f"wrote {OUT.relative_to(REPO)}: {len(rows)} rows, {valid} valid")


if __name__ == "__main__":
    main()
