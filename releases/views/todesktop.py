"""`POST /new-release-webhook` (SPEC §4)."""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


@csrf_exempt
@require_POST
def release_webhook(request):
    return JsonResponse({"error": "not implemented yet"}, status=503)
