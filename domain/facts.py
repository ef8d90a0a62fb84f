"""What supervision knows of a project, from the aggregate as it stands (`domain.supervision.ProjectFacts`).

The read model keeps the same facts in its tables (`projections.sedimentation.load_facts`); the
write side builds them from the aggregate when a rule asks which alerts a project has on a day
(a supervision case is assigned only for an alert, closed as rectified only once it is gone).
"""

from __future__ import annotations

from typing import Mapping

from domain.project import Project, is_leader
from domain.supervision import CaseFact, GrantFact, IssueFact, PlanFact, ProjectFacts, ReductionFact, ReportFact


def project_facts(project: Project, reductions: Mapping[str, ReductionFact] = {}) -> ProjectFacts:
    """The project's facts; `reductions`: those of the reductions its emission grants drew on."""
    grants = tuple(
        GrantFact(g.grant_id, g.factor, g.granted_on, g.reclaimed_on, g.detail.get("reduction_id"),
                  g.detail.get("person") if is_leader(g.detail.get("role")) else None, g.quantity,
                  tuple(project.disbursements.get(g.grant_id, ())), g.detail.get("start_by"))
        for g in project.grants.values())
    return ProjectFacts(
        code=project.code, name=project.name, district=project.district, registered_on=project.registered_on,
        planned_start=project.registered_start,
        department=project.department, started_on=project.started_on, completed_on=project.completed_on,
        cancelled_on=project.cancelled_on, grants=grants,
        plans=tuple(PlanFact(year, planned, on) for year, planned, on in project.plan_history),
        reports=tuple(ReportFact(period, completed, on) for period, completed, on in project.report_history),
        issues=tuple(IssueFact(i["issue_id"], i["title"],
                               tuple((level["escalated_on"], level["due_date"]) for level in i["levels"]),
                               i["resolved_on"]) for i in project.issues.values()),
        reductions={g.reduction_id: reductions[g.reduction_id] for g in grants
                    if g.reduction_id and g.reduction_id in reductions},
        start_amendments=tuple((a["on"], a["planned_start"]) for a in project.amendments if "planned_start" in a),
        cases=tuple(CaseFact(c["case_id"], c["rule"], c["grant_id"], c["responsible"], c["assigned_on"],
                             c["due_date"], tuple(r["on"] for r in c["responses"]), c["closed_on"], c["outcome"])
                    for c in project.cases.values()),
    )
