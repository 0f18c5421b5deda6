"""Domain refusals as HTTP answers: one function per error family, one handler each.

A service refuses by raising its package's error (`ReportError`, `CoordinationError`,
`CorrectionError`, `AlertStateError`); `create_app` registers one handler per family
(api.app._install_error_handlers), so a route never translates them itself. Each function here
gives the status and the JSON `detail`, in the caller's language.
"""

from __future__ import annotations

from typing import Any

from fastapi import status

from api.accounting.corrections import CorrectionError
from api.alerts.engine import AlertStateError
from api.coordination.errors import CoordinationError
from api.reports import rules
from api.reports.errors import Conflict, Incomplete, Locked, ReportError, ValidationFailed
from api.reports.messages import text

Refusal = tuple[int, Any]


def report_refusal(exc: ReportError, locale: str) -> Refusal:
    """Refused figures 422 field by field (`confirmable` when all are warnings the user may
    confirm with a reason); a locked report 409 with why; incomplete SYT figures 409 with the
    fields (repeat with `confirm_incomplete=true`); another state conflict 409."""
    if isinstance(exc, ValidationFailed):
        return 422, {
            "errors": [e.as_dict(locale) for e in exc.errors],
            "confirmable": rules.is_confirmable(exc.errors),
        }
    if isinstance(exc, Locked):
        return status.HTTP_409_CONFLICT, {
            "locked": exc.key,
            "key": exc.key,
            "message": text(exc.key, locale),
        }
    if isinstance(exc, Incomplete):
        return status.HTTP_409_CONFLICT, {
            "key": exc.key,
            "message": text(exc.key, locale),
            "incomplete": exc.fields,
        }
    if isinstance(exc, Conflict):
        return status.HTTP_409_CONFLICT, {"key": exc.key, "message": text(exc.key, locale)}
    raise exc  # a new kind of ReportError must be given its answer here


def coordination_refusal(exc: CoordinationError, locale: str) -> Refusal:
    """The error's own status with its field and message; out of scope is a plain 404."""
    if exc.status == status.HTTP_404_NOT_FOUND:
        return status.HTTP_404_NOT_FOUND, "not found"
    return exc.status, {"errors": [exc.as_dict(locale)]}


def correction_refusal(exc: CorrectionError, locale: str) -> Refusal:
    """422 naming the refused field of the correction."""
    return 422, {"errors": [{"field": exc.field, "key": exc.key, "message": text(exc.key, locale)}]}


def alert_state_refusal(exc: AlertStateError, locale: str) -> Refusal:
    """409: the alert is not in a state that allows the action."""
    del locale
    return status.HTTP_409_CONFLICT, str(exc)


# Each family and the function that answers it, registered once by create_app.
FAMILIES: tuple[tuple[type[Exception], Any], ...] = (
    (ReportError, report_refusal),
    (CoordinationError, coordination_refusal),
    (CorrectionError, correction_refusal),
    (AlertStateError, alert_state_refusal),
)
