from rest_framework.response import Response
from rest_framework.views import APIView

from .models import StoredBody


class StoreApi(APIView):
    """POST any JSON body: stored with one INSERT; answers 201 {"id"}."""

    def post(self, request):
        row = StoredBody.objects.create(body=request.data)
        return Response({"id": row.pk}, status=201)
