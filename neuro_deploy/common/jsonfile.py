"""Reading a user's JSON file (rates, energy reports): one place that turns what the json module
cannot take into a one-line error."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from neuro_deploy.errors import NeuroDeployError


def read_json(path: str | Path) -> Any:
    """The decoded content of `path`. The json module recurses once per nesting level, so a file
    nested deeper than Python's recursion limit (`[[[[...]]]]`, a few hundred kilobytes) would end in
    a RecursionError; it is refused by name. Missing files, bad JSON and bad UTF-8 raise as
    `json.loads` and `Path.read_text` do, for the caller to word."""
    text = Path(path).read_text()
    try:
        return json.loads(text)
    except RecursionError:
        raise NeuroDeployError(f"{path}: JSON nested too deeply to read (more than about "
                               f"{sys.getrecursionlimit()} levels of brackets)") from None
