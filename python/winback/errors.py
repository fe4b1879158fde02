"""Exceptions and warnings of winback: the one place they are defined (the Rust extension raises
these errors too). Every warning derives from :class:`WinbackWarning`, so
``warnings.simplefilter("ignore", WinbackWarning)`` silences winback's notices and nothing else."""

from __future__ import annotations

__all__ = [
    "BoundaryFitWarning",
    "CapacityWarning",
    "SpendOutlierWarning",
    "UnitNotCheckedWarning",
    "ValueWarning",
    "WinbackConfigError",
    "WinbackError",
    "WinbackFitError",
    "WinbackInputError",
    "WinbackReloadError",
    "WinbackStateError",
    "WinbackWarning",
]


class WinbackError(Exception):
    """Base class of every error winback raises on purpose."""


class WinbackInputError(WinbackError, ValueError):
    """The input data is unusable as given: the message names the column, the rows and the fix."""


class WinbackConfigError(WinbackError, ValueError):
    """An argument or configuration value is invalid: the message names it and its valid range."""


class WinbackStateError(WinbackConfigError):
    """The daily loop's state database cannot be used: the server is down or refuses the
    credentials, the schema is from a newer winback, or another run holds the database's lock
    past the wait (docs/loop.md#errors). One line, naming the database URL without its password;
    the CLI exits with code 2 as for any configuration error."""


class WinbackFitError(WinbackError, RuntimeError):
    """A model could not be fitted: the message carries the optimiser's reason and a hint."""


class WinbackReloadError(WinbackConfigError):
    """A model set was refused by the scoring service (a file missing, corrupt or invalid, a
    probe score failing, files changing while read): the message names the file and field; the
    models already serving keep serving."""


class WinbackWarning(UserWarning):
    """Base class of every warning winback issues: a documented fall-back or a notice that
    input was left out, never a silent change."""


class ValueWarning(WinbackWarning):
    """A value run went on with a documented fall-back (population defaults for a model that
    could not be fitted) or left input out (expense rows of customers without transactions)."""


class SpendOutlierWarning(WinbackWarning):
    """Customers with an extreme number of occasions were set aside from the Gamma–Gamma fit
    (docs/methods.md#spend-outliers); they are still predicted from the fitted parameters."""


class BoundaryFitWarning(WinbackWarning):
    """A model's likelihood has no finite maximum: it rises towards a boundary of the parameter
    space where the model becomes a simpler one, and the fit stopped on the way there, at a
    point within a negligible log-likelihood of the supremum (docs/methods.md#pareto-nbd-boundary:
    Pareto/NBD's s, β → ∞, one dropout rate μ = s/β for every customer). The message gives what
    the data identify (μ); ``boundary_`` is True on the model."""


class UnitNotCheckedWarning(WinbackWarning):
    """A model that knows its time unit and resolution was given a plain summary frame, which
    does not carry them, so they could not be checked (docs/methods.md#fitting). Pass the
    ``(frame, info)`` pair of ``winback.summary(..., return_info=True)`` to check them. Issued
    once per model."""


class CapacityWarning(WinbackWarning):
    """The staff capacity cut the target list short (docs/methods.md#holdout).

    Attributes
    ----------
    capacity : the staff's total capacity (contacts).
    targets_cut : targets left off the list (both arms, past the priority where capacity ran out).
    contacts_cut : of those, the customers who would have been contacted.
    """

    def __init__(self, message: str, *, capacity: int, targets_cut: int, contacts_cut: int):
        super().__init__(message)
        self.capacity = capacity
        self.targets_cut = targets_cut
        self.contacts_cut = contacts_cut
