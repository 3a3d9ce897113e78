from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpResponsePermanentRedirect, JsonResponse
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from .throttling import login_throttled


def healthz(_request):
    return JsonResponse({"ok": True})


def favicon(_request):
    """The site's icon (resolved per request: a manifest storage knows the hashed name only after collectstatic)."""
    return HttpResponsePermanentRedirect(static("studyserver/favicon.svg"))


urlpatterns = [
    path("", RedirectView.as_view(url="/dashboard/", permanent=False)),
    path("healthz", healthz, name="healthz"),
    # pages that do not name an icon (admin, API docs) make browsers ask for /favicon.ico
    path("favicon.ico", favicon),
    path("admin/login/", login_throttled(admin.site.login)),  # before admin/: the same view, rate-limited
    path("admin/", admin.site.urls),
    path("accounts/login/", login_throttled(auth_views.LoginView.as_view()), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file, so the CSP needs no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include("studyserver.researcher.api.urls")),
    path("", include("annotations.urls")),
    path("", include("studyserver.researcher.dashboard.urls")),
]

# JSON error answers under /api/ (studyserver/error_pages.py), HTML elsewhere.
handler400 = "studyserver.error_pages.bad_request"
handler403 = "studyserver.error_pages.permission_denied"
handler404 = "studyserver.error_pages.page_not_found"
handler500 = "studyserver.error_pages.server_error"
