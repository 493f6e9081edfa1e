"""The export task: loads the job by id and writes its file (the service is imported in the
body, like every task's)."""

from celery import shared_task

# A claim older than this hard time limit was left by a dead worker (export_job_run takes it over).
EXPORT_TASK_TIME_LIMIT_SECONDS = 3600


@shared_task(name="dashboard.export_csv", ignore_result=True, acks_late=True,
             time_limit=EXPORT_TASK_TIME_LIMIT_SECONDS, soft_time_limit=EXPORT_TASK_TIME_LIMIT_SECONDS - 100)
def export_csv_task(export_id: int) -> None:
    from backoffice.dashboard.exports.services import export_job_run

    export_job_run(export_id=export_id)


@shared_task(name="dashboard.exports_expire", ignore_result=True, time_limit=1800, soft_time_limit=1700)
def exports_expire_task() -> None:
    from backoffice.dashboard.exports.services import exports_expire

    exports_expire()
