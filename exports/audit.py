"""The audit trail: who created, cancelled, downloaded or re-ran each job, with which credential."""
from exports.models import AuditEvent

SIGNED_LINK = "signed download link"


def _credential(caller) -> str:
    if caller is None:
        return SIGNED_LINK
    if caller.credential:
        return caller.credential
    if caller.user is not None:
        return f"admin session of {caller.user.get_username()}"
    return "management command"


def audit_record(*, job, action: str, caller=None) -> AuditEvent:
    """Record one action on a job; `caller` None means an anonymous signed link."""
    return AuditEvent.objects.create(
        tenant_id=job.tenant_id,
        job_kind=job.kind,
        job_id=job.pk,
        action=action,
        actor=caller.label if caller is not None else "anonymous",
        credential=_credential(caller),
    )
