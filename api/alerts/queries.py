"""Named queries and role sets shared by the alerts API and the alerts page."""

from __future__ import annotations

from api.scope import Role

WATCHERS = (Role.ADMIN, Role.BYT, Role.SYT, Role.FACILITY, Role.ENGINEER)

ALERT_LIST = """
SELECT a.id, a.rule, a.subject_kind, a.subject_id, a.facility_id, o.name AS facility,
       a.severity, a.state, a.level, a.opened_at, a.last_true_at, a.acknowledged_at,
       a.resolved_at, a.resolution_note, a.flaps, a.details
FROM alerts a JOIN organisations o ON o.id = a.facility_id
WHERE (%(scope_national)s OR a.facility_id = ANY(%(scope_facilities)s::bigint[]))
  AND (%(state)s::text IS NULL OR a.state = %(state)s
       OR (%(state)s = 'active' AND a.state <> 'resolved'))
ORDER BY a.state = 'resolved', a.severity = 'warning', a.opened_at DESC
LIMIT %(limit)s
"""

ALERT_IN_SCOPE = """
SELECT 1 FROM alerts WHERE id = %(id)s
  AND (%(scope_national)s OR facility_id = ANY(%(scope_facilities)s::bigint[]))
"""
