"""The RQ worker of the exports and imports queues (settings.RQ["WORKER_CLASS"])."""
import logging

from django.db import connections

from exports.scratch import orphan_work_files_remove
from sparkexport.worker import ObservedWorker

logger = logging.getLogger(__name__)


class ExportsWorker(ObservedWorker):
    """ObservedWorker that first removes what killed workers of its host left in its scratch
    directory (files of jobs no longer running: a killed job's is removed once it has ended)."""

    def work(self, *args, **kwargs):
        removed = orphan_work_files_remove()
        if removed:
            logger.info("removed %d scratch file(s) of jobs no longer running", removed)
        # The work horses are forked from this process: none may inherit its connection.
        connections.close_all()
        return super().work(*args, **kwargs)
