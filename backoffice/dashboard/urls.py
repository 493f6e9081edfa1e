"""The dashboard's own pages on the admin site (FlowPayAdminSite.extra_urls): staff only,
behind the second factor, each checking its capabilities (core.permissions). The lists'
exports and timelines are on the lists' own admin URLs (backoffice.dashboard.lists)."""

from django.urls import path


def dashboard_urls(site) -> list:
    def page(name: str):
        def view(request, *args, **kwargs):
            from backoffice.dashboard import audit_log, dead_letters, review_queues
            from backoffice.dashboard.exports import views as exports

            pages = {
                "audit_log": audit_log.audit_log_page,
                "review_queues": review_queues.review_queues_page,
                "dead_letters": dead_letters.dead_letters_page,
                "exports": exports.exports_page,
                "export_download": exports.export_download,
            }
            return pages[name](request, site, *args, **kwargs)

        return site.admin_view(view)

    return [
        path("dashboard/audit-log/", page("audit_log"), name="dashboard_audit_log"),
        path("dashboard/review-queues/", page("review_queues"), name="dashboard_review_queues"),
        path("dashboard/dead-letters/", page("dead_letters"), name="dashboard_dead_letters"),
        path("dashboard/exports/", page("exports"), name="dashboard_exports"),
        path("dashboard/exports/<str:public_id>/download/", page("export_download"), name="dashboard_export_download"),
    ]
