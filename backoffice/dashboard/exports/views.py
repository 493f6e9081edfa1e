"""The export pages: a list's "Export CSV" (streamed, or queued when large), the Exports
page with the requester's own queued exports, and their download."""

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from backoffice.dashboard.exports.services import (
    changelist_queryset,
    export_csv_lines,
    export_file_path,
    export_job_download,
    export_job_request,
    export_jobs_of,
    export_row_count_capped,
    export_stream_record,
)
from core.admin import staff_actor
from core.errors import FlowPayError, NotFound


def export_list(request, model_admin):
    """The list's whole filtered set as CSV: the filters are the list's query string."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    opts = model_admin.model._meta
    list_url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    try:
        queryset = changelist_queryset(model_admin=model_admin, request=request)
    except IncorrectLookupParameters:
        messages.error(request, "These filters are not valid for this list: nothing was exported.")
        return HttpResponseRedirect(list_url)
    query_string = request.GET.urlencode()
    cap = settings.FLOWPAY_EXPORT_STREAM_MAX_ROWS
    rows = export_row_count_capped(queryset=queryset, cap=cap)
    if rows > cap:
        try:
            job = export_job_request(model_admin=model_admin, user=request.user, query_string=query_string,
                                     rows_at_least=rows, actor=staff_actor(request))
        except FlowPayError as exc:
            messages.error(request, exc.message)
            return HttpResponseRedirect(f"{list_url}?{query_string}")
        messages.success(request, f"More than {cap} rows: export {job.public_id} is being written; "
                                  "download it from this page when it is ready.")
        return HttpResponseRedirect(reverse("admin:dashboard_exports"))
    export_stream_record(model_admin=model_admin, query_string=query_string, rows=rows, actor=staff_actor(request))
    response = StreamingHttpResponse(export_csv_lines(columns=model_admin.export_columns, queryset=queryset),
                                     content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="{opts.model_name}-{stamp}.csv"'
    return response


def exports_page(request, admin_site):
    context = {
        **admin_site.each_context(request),
        "title": "Exports",
        "jobs": export_jobs_of(request.user),
        "stream_max_rows": settings.FLOWPAY_EXPORT_STREAM_MAX_ROWS,
        "retention_days": settings.FLOWPAY_EXPORT_RETENTION_DAYS,
    }
    return TemplateResponse(request, "admin/dashboard/exports.html", context)


def export_download(request, admin_site, public_id: str):
    try:
        job = export_job_download(public_id=public_id, user=request.user, actor=staff_actor(request))
    except NotFound:
        raise Http404("No such export is ready for you.") from None
    return FileResponse(open(export_file_path(job), "rb"), as_attachment=True, filename=job.file_name,
                        content_type="text/csv; charset=utf-8")
