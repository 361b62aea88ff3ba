"""Flow inputs (KESTRA_SPEC §3): one class per input type, and the check that a default fits its type."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from runner.durations import java_duration, parse_duration
from runner.errors import GitSyncError
from runner.types import InputId

INPUT_TYPES = (
    "STRING", "INT", "FLOAT", "BOOLEAN", "BOOL", "DATETIME", "DATE", "TIME", "DURATION", "FILE",
    "JSON", "YAML", "URI", "SECRET", "EMAIL", "ENUM", "SELECT", "MULTISELECT", "ARRAY",
)  # fmt: skip


class DependsOn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    inputs: list[str] = []
    condition: str | None = None


def _is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def coerce_input_value(input_type: str, value: Any, item_type: str | None = None) -> Any:
    """Check (and convert) a value for an input type; raise ValueError naming what was expected."""
    if input_type in ("STRING", "SECRET", "ENUM", "SELECT", "URI", "EMAIL", "FILE"):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"expected a string, got {value!r}")
        text = str(value)
        if input_type == "EMAIL" and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text):
            raise ValueError(f"{text!r} is not an e-mail address")
        if input_type == "URI" and not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", text):
            raise ValueError(f"{text!r} is not a URI (it needs a scheme, e.g. https://)")
        return text
    if input_type == "INT":
        if isinstance(value, bool) or not (
            isinstance(value, int) or (isinstance(value, str) and value.strip().lstrip("+-").isdigit())
        ):
            raise ValueError(f"expected an integer, got {value!r}")
        return int(value)
    if input_type == "FLOAT":
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected a number, got {value!r}") from None
    if input_type in ("BOOLEAN", "BOOL"):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ValueError(f"expected true or false, got {value!r}")
    if input_type == "DATETIME":
        return _parse(
            value, lambda v: datetime.fromisoformat(v.replace("Z", "+00:00")), datetime, "an ISO-8601 date-time"
        )
    if input_type == "DATE":
        return _parse(value, date.fromisoformat, date, "an ISO-8601 date (YYYY-MM-DD)")
    if input_type == "TIME":
        return _parse(value, time.fromisoformat, time, "an ISO-8601 time (HH:MM:SS)")
    if input_type == "DURATION":
        if not isinstance(value, str):
            raise ValueError(f"expected an ISO-8601 duration, got {value!r}")
        return parse_duration(value)
    if input_type == "JSON":
        if isinstance(value, str):
            try:
                return _bounded("JSON input", json.loads, value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON: {exc}") from None
        return _bounded("JSON input", lambda v: v, value)
    if input_type == "YAML":
        if not isinstance(value, str):
            return _bounded("YAML input", lambda v: v, value)
        try:
            from runner.expressions import limits

            return _bounded("YAML input", lambda v: limits.load_yaml("YAML input", v), value)
        except yaml.YAMLError as exc:
            raise ValueError(f"not valid YAML: {exc}") from None
    if input_type in ("ARRAY", "MULTISELECT"):
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise ValueError(f"expected a list, got {value!r}") from None
        if not isinstance(value, list):
            raise ValueError(f"expected a list, got {value!r}")
        return [coerce_input_value(item_type or "STRING", item) for item in value]
    raise ValueError(f"unknown input type {input_type!r}")


def _bounded(what: str, parse: Any, value: Any) -> Any:
    """Parsed JSON/YAML within the expression data limits (a YAML alias bomb is refused, not expanded)."""
    from runner.expressions import limits

    try:
        return limits.check_data(what, parse(value))
    except RecursionError:
        raise ValueError(f"{what}: the data is nested deeper than {limits.MAX_DATA_DEPTH}") from None
    except limits.LimitError as exc:
        raise ValueError(str(exc)) from None


def _parse(value: Any, parse: Any, kind: type, expected: str) -> Any:
    if isinstance(value, kind):
        return value
    if isinstance(value, str):
        try:
            return parse(value)
        except ValueError:
            pass
    raise ValueError(f"expected {expected}, got {value!r}")


class _Input(BaseModel):
    """Common input properties."""

    model_config = ConfigDict(defer_build=True, extra="forbid", populate_by_name=True)
    value_type: ClassVar[str] = "STRING"

    id: InputId
    type: str
    description: str | None = None
    displayName: str | None = Field(default=None, max_length=64)
    required: bool = True
    defaults: Any = None
    """A default value of the input's type (or an expression, rendered when the execution is created)."""
    prefill: Any = None
    dependsOn: DependsOn | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy_name(cls, data: Any) -> Any:
        # Kestra 0.15 renamed `name` to `id`; `setName()` still copies it across when `id` is absent.
        if isinstance(data, dict) and "name" in data and "id" not in data:
            data = {**data, "id": data["name"]}
            del data["name"]
        return data

    @model_validator(mode="after")
    def _default_fits_type(self) -> _Input:
        for key in ("defaults", "prefill"):
            value = getattr(self, key)
            if value is not None and not _is_template(value):
                try:
                    coerce_input_value(self.value_type, value, getattr(self, "itemType", None))
                except ValueError as exc:
                    raise ValueError(f"{key} does not fit type {self.type}: {exc}") from None
        return self


class StringInput(_Input):
    type: Literal["STRING"]
    validator: str | None = None
    """A regular expression the value must match."""

    @model_validator(mode="after")
    def _validator_compiles(self) -> StringInput:
        if self.validator is not None:
            try:
                re.compile(self.validator)
            except re.error as exc:
                raise ValueError(f"validator is not a valid regular expression: {exc}") from None
        return self


class SecretInput(StringInput):
    type: Literal["SECRET"]  # type: ignore[assignment]


class _NumberInput(_Input):
    min: float | None = None
    max: float | None = None


class IntInput(_NumberInput):
    value_type: ClassVar[str] = "INT"
    type: Literal["INT"]


class FloatInput(_NumberInput):
    value_type: ClassVar[str] = "FLOAT"
    type: Literal["FLOAT"]


class BooleanInput(_Input):
    value_type: ClassVar[str] = "BOOLEAN"
    type: Literal["BOOLEAN", "BOOL"]


class _TemporalInput(_Input):
    after: str | None = None
    before: str | None = None


class DateTimeInput(_TemporalInput):
    value_type: ClassVar[str] = "DATETIME"
    type: Literal["DATETIME"]


class DateInput(_TemporalInput):
    value_type: ClassVar[str] = "DATE"
    type: Literal["DATE"]


class TimeInput(_TemporalInput):
    value_type: ClassVar[str] = "TIME"
    type: Literal["TIME"]


class DurationInput(_Input):
    value_type: ClassVar[str] = "DURATION"
    type: Literal["DURATION"]
    min: str | None = None
    max: str | None = None


class FileInput(_Input):
    value_type: ClassVar[str] = "FILE"
    type: Literal["FILE"]
    extension: str | None = None
    allowedFileExtensions: list[str] | None = None


class JsonInput(_Input):
    value_type: ClassVar[str] = "JSON"
    type: Literal["JSON"]


class YamlInput(_Input):
    value_type: ClassVar[str] = "YAML"
    type: Literal["YAML"]


class UriInput(_Input):
    value_type: ClassVar[str] = "URI"
    type: Literal["URI"]


class EmailInput(_Input):
    value_type: ClassVar[str] = "EMAIL"
    type: Literal["EMAIL"]


class SelectInput(_Input):
    type: Literal["SELECT", "ENUM"]
    values: list[str] | None = None
    expression: str | None = None
    allowCustomValue: bool = False
    isRadio: bool = False

    @model_validator(mode="after")
    def _default_is_a_value(self) -> SelectInput:
        if self.values is None and self.expression is None:
            raise ValueError(f"a {self.type} input needs 'values' or 'expression'")
        if (
            self.values is not None
            and self.defaults is not None
            and not _is_template(self.defaults)
            and not self.allowCustomValue
            and str(self.defaults) not in self.values
        ):
            raise ValueError(f"defaults {self.defaults!r} is not one of the values {self.values}")
        return self


class MultiSelectInput(_Input):
    value_type: ClassVar[str] = "MULTISELECT"
    type: Literal["MULTISELECT"]
    values: list[str] | None = None
    options: list[str] | None = None
    expression: str | None = None
    itemType: str = "STRING"
    allowCustomValue: bool = False


class ArrayInput(_Input):
    value_type: ClassVar[str] = "ARRAY"
    type: Literal["ARRAY"]
    itemType: Literal[
        "STRING", "INT", "FLOAT", "BOOLEAN", "BOOL", "DATETIME", "DATE", "TIME", "DURATION", "JSON", "YAML",
        "URI", "EMAIL", "SECRET", "SELECT",
    ]  # fmt: skip


def _upper_type(value: Any) -> Any:
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return {**value, "type": value["type"].upper()}
    return value


Input = Annotated[
    StringInput
    | SecretInput
    | IntInput
    | FloatInput
    | BooleanInput
    | DateTimeInput
    | DateInput
    | TimeInput
    | DurationInput
    | FileInput
    | JsonInput
    | YamlInput
    | UriInput
    | EmailInput
    | SelectInput
    | MultiSelectInput
    | ArrayInput,
    Field(discriminator="type"),
    BeforeValidator(_upper_type),
]


@dataclass(frozen=True)
class UploadedFile:
    """A file given for a FILE input (`gitsync run --input name=@path`, a file part of the API's multipart form):
    stored in the execution's storage when the execution is created; the input's value is then its URI."""

    filename: str
    path: Path | None = None
    """A local file to copy; else `data`."""
    data: bytes = b""


def store_uploads(
    declared: list[Any] | None, given: dict[str, Any], put: Callable[[str, UploadedFile], str]
) -> dict[str, Any]:
    """`given` with each file for a FILE input replaced by `put(input id, file)`, the stored file's URI (Kestra's
    `kestra:///<namespace>/<flow>/executions/<id>/inputs/<input>/<file name>`). A file for an input of another
    type is an InputError, raised before anything is stored."""
    uploads = {name: value for name, value in given.items() if isinstance(value, UploadedFile)}
    if not uploads:
        return given
    types = {item.id: item for item in declared or []}
    problems = [
        f"input '{name}' ({types[name].type}): a file was given, but only a FILE input takes a file"
        for name in uploads
        if name in types and types[name].value_type != "FILE"
    ]
    if problems:
        raise InputError(problems)
    return {name: put(name, value) if name in uploads and name in types else value for name, value in given.items()}


class InputError(GitSyncError, ValueError):
    """Inputs given to an execution do not fit the flow; `problems` lists each, by input id."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


RenderDefault = Callable[[str, Mapping[str, Any]], Any]
"""(default text, the inputs resolved so far) -> the rendered default."""


def resolve_inputs(
    declared: list[Any] | None, given: dict[str, Any], render: RenderDefault | None = None
) -> dict[str, Any]:
    """Coerce the given values to their declared types, apply defaults, check `required`, `values` and ranges.

    `render(text, inputs)` renders a default that is an expression (Kestra 1.0 renders input defaults); `inputs`
    holds the inputs declared before it. A default that cannot be rendered (an undefined variable…) is a problem of
    its input, as in Kestra. Unknown inputs are refused, like Kestra's API does. Raises InputError listing every
    problem.
    """
    problems: list[str] = []
    out: dict[str, Any] = {}
    known = {item.id for item in declared or []}
    for name in sorted(set(given) - known):
        problems.append(f"unknown input '{name}' (the flow declares: {', '.join(sorted(known)) or 'none'})")
    for item in declared or []:
        if item.id in given and given[item.id] is not None:
            value = given[item.id]
        elif item.defaults is not None:
            if render is None or not _is_template(item.defaults):
                value = item.defaults
            else:
                try:
                    value = render(item.defaults, dict(out))
                except GitSyncError as exc:
                    problems.append(
                        f"input '{item.id}': its default {item.defaults!r} cannot be rendered: {exc} "
                        "(give the input a value, or fix its default: a default sees flow, envs and the inputs "
                        "declared before it)"
                    )
                    out[item.id] = None
                    continue
        else:
            if item.required:
                problems.append(f"input '{item.id}' is required")
            out[item.id] = None
            continue
        try:
            coerced = coerce_input_value(item.value_type, value, getattr(item, "itemType", None))
            out[item.id] = kestra_form(_check(item, coerced))
        except ValueError as exc:
            problems.append(f"input '{item.id}' ({item.type}): {exc}")
    if problems:
        raise InputError(problems)
    return out


def kestra_form(value: Any) -> Any:
    """A typed input as Kestra holds it in expressions, which is how it prints: a DURATION as Java writes it
    (`PT1S`, `PT24H`), a DATETIME as an instant (`2024-01-15T08:00:00Z`), a DATE and a TIME in ISO-8601 (`10:15`)."""
    from runner.expressions import dates

    if isinstance(value, timedelta):
        return java_duration(value)
    if isinstance(value, datetime):
        return dates.iso_instant(value if value.tzinfo else value.replace(tzinfo=UTC))
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return dates.java_local_time(value)
    if isinstance(value, list):
        return [kestra_form(item) for item in value]
    return value


def _check(item: Any, value: Any) -> Any:
    values = getattr(item, "values", None)
    if item.type in ("SELECT", "ENUM") and values and not item.allowCustomValue and value not in values:
        raise ValueError(f"{value!r} is not one of {values}")
    if isinstance(item, _NumberInput):
        if item.min is not None and value < item.min:
            raise ValueError(f"{value} is below the minimum {item.min:g}")
        if item.max is not None and value > item.max:
            raise ValueError(f"{value} is above the maximum {item.max:g}")
    if item.value_type == "FILE" and not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", value):
        raise ValueError(
            f"{value!r} is not a file's URI: upload the file (gitsync run --input {item.id}=@{value}, or a file "
            "part of the API's multipart form data) or give the kestra:/// URI of a stored file"
        )
    validator = getattr(item, "validator", None)
    if validator and isinstance(value, str) and not _fullmatch(validator, value):
        raise ValueError(f"{value!r} does not match {validator}")
    return value


def _fullmatch(pattern: str, value: str) -> bool:
    """The input's `validator` against its value, with a timeout (a careless pattern cannot stall the service)."""
    from runner.expressions import limits

    try:
        return limits.regex_fullmatch("validator", pattern, value) is not None
    except limits.LimitError as exc:
        raise ValueError(str(exc)) from None
