"""ISO-8601 durations (`PT30S`, `P1DT2H`, `-PT5M`) as Kestra writes them."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(
    r"^(?P<sign>[-+])?P(?:(?P<weeks>\d+(?:[.,]\d+)?)W)?(?:(?P<days>\d+(?:[.,]\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:[.,]\d+)?)H)?(?:(?P<minutes>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?$",
    re.IGNORECASE,
)


def parse_duration(text: str) -> timedelta:
    """Parse an ISO-8601 duration; raise ValueError with an example of the expected form."""
    match = _DURATION.match(text.strip())
    if not match or text.strip().upper().rstrip("T") in {"P", "-P", "+P"} or text.strip().upper().endswith("T"):
        raise ValueError(f"{text!r} is not an ISO-8601 duration (e.g. PT30S, PT5M, PT1H, P1D)")
    parts = {k: float(v.replace(",", ".")) for k, v in match.groupdict().items() if v and k != "sign"}
    delta = timedelta(**parts)
    return -delta if match.group("sign") == "-" else delta


def format_duration(delta: timedelta) -> str:
    """The shortest ISO-8601 form of a duration (PT1H30M, P1D, PT0.5S)."""
    total = delta.total_seconds()
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    out = f"{sign}P" + (f"{int(days)}D" if days else "")
    time = (f"{int(hours)}H" if hours else "") + (f"{int(minutes)}M" if minutes else "")
    if seconds:
        time += f"{seconds:g}S"
    if time or not days:
        out += "T" + (time or "0S")
    return out


def java_duration(delta: timedelta) -> str:
    """A duration as Java's `Duration.toString()` writes it, which is how Kestra prints one: hours at most
    (`PT24H`, never `P1D`), `PT0S` for zero, a fraction without trailing zeros (`PT0.5S`), `PT-1.5S`."""
    micros = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    if micros == 0:
        return "PT0S"
    seconds, fraction = divmod(micros, 1_000_000)  # Java's Duration: floor seconds, nanos in [0, 1e9)
    total = seconds + 1 if seconds < 0 and fraction else seconds
    hours, rest = int(total / 3600), total - int(total / 3600) * 3600  # Java's division truncates toward zero
    minutes, secs = int(rest / 60), rest - int(rest / 60) * 60
    out = "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if secs == 0 and fraction == 0 and len(out) > 2:
        return out
    out += "-0" if seconds < 0 and fraction and secs == 0 else str(secs)
    if fraction:
        digits = str(2_000_000 - fraction if seconds < 0 else fraction + 1_000_000)[1:].rstrip("0")
        out += "." + digits
    return out + "S"
