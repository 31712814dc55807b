"""`POST /github-webhook` (SPEC §6, mirroring)."""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


@csrf_exempt
@require_POST
def github_webhook(request):
    return JsonResponse({"error": "not implemented yet"}, status=503)
