"""The exception tree of the dispatch package.

::

    DispatchError                 base of everything raised on purpose
    ├── SettingsError             a DISPATCH_* variable is invalid (names the variable)
    ├── ReferenceDataError        `dispatch load` refused a file (lists entry + field)
    ├── TemplateError             a template is missing, outside the templates dir or broken
    ├── RenderError               a document could not be produced from a valid template
    ├── NotFoundError             an order / request / object does not exist
    └── DeliveryError             a channel failed; ``retryable`` says whether a retry can help

Errors a user sees name the field or file, the value and the fix. They never carry secrets.
"""

from __future__ import annotations


class DispatchError(Exception):
    """Base class of every error this package raises on purpose."""


class SettingsError(DispatchError):
    """A ``DISPATCH_*`` environment variable has a bad value."""


class ReferenceDataError(DispatchError):
    """A reference-data file was refused; ``problems`` lists ``entry.field: message``."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        shown = "\n  ".join(problems)
        super().__init__(f"{source}: {len(problems)} problem(s), nothing was written:\n  {shown}")


class TemplateError(DispatchError):
    """A named template is missing, escapes the templates directory, or does not parse."""


class RenderError(DispatchError):
    """A document could not be rendered."""


class NotFoundError(DispatchError):
    """The thing asked for does not exist."""


class DeliveryError(DispatchError):
    """A send failed. ``retryable`` is True when a later attempt may succeed."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable
