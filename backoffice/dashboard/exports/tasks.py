"""The export task: loads the job by id and writes its file (the service is imported in the
body, like every task's)."""

from celery import shared_task


@shared_task(name="dashboard.export_csv", ignore_result=True, acks_late=True, time_limit=3600, soft_time_limit=3500)
def export_csv_task(export_id: int) -> None:
    from backoffice.dashboard.exports.services import export_job_run

    export_job_run(export_id=export_id)
