"""Periodic jobs, run by `manage.py rqcron exports.cron` beside the workers."""
from rq import cron

from exports.maintenance import reap_exports_job

# Every minute, end the jobs whose worker died or that outran their timeout, so no job
# stays in progress (holding the tenant's slot) for longer than its timeout plus a minute.
cron.register(reap_exports_job, queue_name="exports", interval=60, job_timeout=300)
