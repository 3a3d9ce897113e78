from django.db import models


class StoredBody(models.Model):
    """One request body, as parsed JSON (jsonb), and when it came."""

    body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
