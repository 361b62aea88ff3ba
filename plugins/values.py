"""Property value shapes shared by several built-in plugins (nested option objects, file maps, lists)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from runner.types import Dyn

StrList = Dyn[list[str]]
"""A list of strings, or an expression that renders to one (Kestra `Property<List<String>>`)."""
StrMap = Dyn[dict[str, Any]]
"""A map, or an expression that renders to one (Kestra `Property<Map<String, …>>`)."""
InputFiles = dict[str, str] | str
"""File name -> inline content or `kestra://` URI; or a JSON / expression string giving that map."""


class Options(BaseModel):
    """A nested option object: strict like Kestra's parser (an unknown key is an error)."""

    model_config = ConfigDict(defer_build=True, extra="forbid", populate_by_name=True, coerce_numbers_to_str=True)


class NamespaceFiles(Options):
    """Which namespace files to copy into the working directory."""

    enabled: Dyn[bool] = True
    """Copy the namespace files at all."""
    include: StrList | None = None
    """Glob patterns of the files to copy (all when empty)."""
    exclude: StrList | None = None
    """Glob patterns of the files to leave out."""
    ifExists: Dyn[Literal["OVERWRITE", "FAIL", "WARN", "IGNORE"]] = "OVERWRITE"
    """What to do when a file already exists in the working directory."""
    folderPerNamespace: Dyn[bool] = False
    """Put each namespace's files in a folder named after it."""
    namespaces: StrList | None = None
    """Namespaces to read files from (the flow's namespace by default)."""
