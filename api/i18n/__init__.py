"""Translations (Vietnamese default, English) and locale-aware formatting.

Catalogs are the `.po` files under `api/i18n/locales/<lang>/LC_MESSAGES/`; every `*.po` there is
read (so a package may ship its own file beside `messages.po`) and compiled in memory on first
use, so a fresh clone works without a manual compile step. Message ids are English; the `vi`
catalog carries the Vietnamese text, which is the default language of the UI.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date as _format_date
from babel.dates import format_datetime as _format_datetime
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

logger = logging.getLogger(__name__)

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
SUPPORTED: tuple[str, ...] = ("vi", "en")
DEFAULT_LOCALE = "vi"
LANG_COOKIE = "oxy_lang"
TIMEZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def normalize(lang: str | None) -> str | None:
    """A supported locale code for `lang` ("en-US" → "en"), or None."""
    if not lang:
        return None
    code = lang.strip().replace("_", "-").split("-")[0].lower()
    return code if code in SUPPORTED else None


@cache
def translations(locale: str) -> Translations:
    """The merged, compiled catalog for `locale` (cached for the process)."""
    merged = Catalog(locale=locale)
    folder = LOCALES_DIR / locale / "LC_MESSAGES"
    for po in sorted(folder.glob("*.po")) if folder.is_dir() else []:
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=locale)
        for msg in catalog:
            if msg.id and msg.string and not msg.fuzzy:
                merged.add(msg.id, msg.string)
    buf = io.BytesIO()
    write_mo(buf, merged)
    buf.seek(0)
    return Translations(fp=buf)


def gettext(locale: str, message: str) -> str:
    """`message` translated into `locale` (the message itself when untranslated)."""
    return translations(normalize(locale) or DEFAULT_LOCALE).gettext(message)


def translator(locale: str) -> Callable[[str], str]:
    """A `_` for Python code: `_ = translator(locale); _("Log in")`."""
    return translations(normalize(locale) or DEFAULT_LOCALE).gettext


def ngettext(locale: str, singular: str, plural: str, n: int) -> str:
    """Plural-aware translation."""
    return translations(normalize(locale) or DEFAULT_LOCALE).ngettext(singular, plural, n)


@cache
def _separators(locale: str) -> dict[int, str]:
    """str.translate table from Python's "1,234.5" to the locale's grouping and decimal marks."""
    symbols = Locale.parse(locale).number_symbols["latn"]
    return {ord(","): symbols["group"], ord("."): symbols["decimal"]}


_EXACT = 2**53  # every int below is a float exactly; floats below have a plain repr


@cache
def _quantum(digits: int) -> Decimal:
    return Decimal(1).scaleb(-digits)


def format_number(value: float | int | Decimal | None, locale: str, digits: int = 0) -> str:
    """A number with the locale's separators (vi: 1.234,5; en: 1,234.5); '—' for None.

    Babel's text exactly (the decimal shown, rounded half-even), without its per-call cost:
    the national pages format thousands of figures (tests/api/test_format_number.py)."""
    if value is None:
        return "—"
    if type(value) in (float, int) and -_EXACT < value < _EXACT:
        # Python rounds the binary value, babel the shortest decimal (repr) half-even: the two
        # differ only when that decimal is a tie at the digit shown (2.675 → 2.68).
        frac = repr(value).partition(".")[2]
        if "e" not in frac and not (len(frac) == digits + 1 and frac.endswith("5")):
            return f"{value:,.{digits}f}".translate(_separators(locale))
    try:
        exact = Decimal(str(value)) if not isinstance(value, Decimal) else value
        if exact.is_finite():
            rounded = exact.quantize(_quantum(digits), rounding=ROUND_HALF_EVEN)
            return f"{rounded:,.{digits}f}".translate(_separators(locale))
    except InvalidOperation:
        pass
    pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
    return format_decimal(value, format=pattern, locale=Locale.parse(locale))


def gas_unit(temp_c: float, pressure_kpa: float, locale: str) -> str:
    """The unit of a gas volume at the declared reference, readable in `locale`: "1 atm" for
    101.325 kPa (a Vietnamese reader takes "101.325" for 101 325), else the pressure with the
    locale's decimal separator ("m3 @ 20 °C, 101,3 kPa" in Vietnamese)."""
    temp = format_decimal(temp_c, format="#,##0.###", locale=Locale.parse(locale))
    if abs(pressure_kpa - 101.325) < 1e-9:
        return f"m3 @ {temp} °C, 1 atm"
    kpa = format_decimal(pressure_kpa, format="#,##0.###", locale=Locale.parse(locale))
    return f"m3 @ {temp} °C, {kpa} kPa"


def to_local(dt: datetime) -> datetime:
    """`dt` (naive means UTC) in Asia/Ho_Chi_Minh."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(TIMEZONE)


def format_datetime(dt: datetime | None, locale: str) -> str:
    """A date-time in Vietnam's time zone, in the locale's medium format; '—' for None."""
    if dt is None:
        return "—"
    return _format_datetime(to_local(dt), "dd/MM/yyyy HH:mm", locale=Locale.parse(locale))


def format_date(d: date | None, locale: str) -> str:
    """A calendar date (Vietnamese style dd/MM/yyyy in both locales); '—' for None."""
    if d is None:
        return "—"
    return _format_date(d, "dd/MM/yyyy", locale=Locale.parse(locale))
