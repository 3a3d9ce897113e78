"""Who may see or change a study on the dashboard: the same rules as the REST API
(`studyserver/researcher/selectors.py`): owner, collaborators with edit or view access, superusers.
Anyone else gets a 404, so slugs do not leak; a collaborator lacking the access an action needs, 403."""
from __future__ import annotations

from django.core.exceptions import PermissionDenied as HttpForbidden
from django.http import Http404

from annotations.models import Stimulus, Study
from studyserver.errors import NotFound, PermissionDenied

from .. import selectors as researcher_selectors


def study_or_404(request, slug: str, *, need: str = "view") -> Study:
    """The study with `study.access` set ("owner", "edit" or "view")."""
    try:
        return researcher_selectors.study_get(user=request.user, slug=slug, need=need)
    except NotFound:
        raise Http404("no such study") from None
    except PermissionDenied as exc:
        raise HttpForbidden(exc.message) from None


def stimulus_or_404(request, stimulus_id: int) -> Stimulus:
    """A stimulus of a study the user may see."""
    visible = researcher_selectors.studies_visible(user=request.user).values("pk")
    stimulus = Stimulus.objects.select_related("study").filter(pk=stimulus_id, study__in=visible).first()
    if stimulus is None:
        raise Http404("no such stimulus")
    return stimulus
