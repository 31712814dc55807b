"""CloudFront invalidations through boto3 (the only module that talks to CloudFront).

One invalidation per purge; its CallerReference is the purge's id, so a retry whose first
attempt reached AWS (the answer was lost) finds that invalidation instead of making a second.
Credentials: `CLOUDFRONT_AWS_*`, else `AWS_*`, else boto3's chain; the permission needed is
`cloudfront:CreateInvalidation` on the distribution. `CLOUDFRONT_ENDPOINT_URL` points the tests
at moto's server.
"""

from __future__ import annotations

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from releases.integrations.outbound import DeliveryError

# Errors that AWS documents as "try again later"; anything else (access denied, no such
# distribution, a bad path) needs a person.
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyInvalidationsInProgress",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
    }
)


def _client():
    credentials = settings.CLOUDFRONT_CREDENTIALS
    return boto3.client(
        "cloudfront",
        endpoint_url=settings.CLOUDFRONT_ENDPOINT_URL,
        region_name="us-east-1",  # CloudFront is global; its API lives in us-east-1
        aws_access_key_id=credentials["access_key"],
        aws_secret_access_key=credentials["secret_key"],
        config=Config(
            connect_timeout=settings.HTTP_TIMEOUT_SECONDS,
            read_timeout=settings.HTTP_TIMEOUT_SECONDS,
            retries={"mode": "standard", "max_attempts": 2},
        ),
    )


def cloudfront_invalidate(*, paths: list[str], reference: str) -> str:
    """Invalidate `paths` (each starting with `/`); returns the invalidation's id."""
    batch = {"Paths": {"Quantity": len(paths), "Items": paths}, "CallerReference": reference}
    try:
        answer = _client().create_invalidation(
            DistributionId=settings.CLOUDFRONT_DISTRIBUTION_ID, InvalidationBatch=batch
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", "")
        raise DeliveryError(f"CloudFront: {code}: {message}", transient=code in TRANSIENT_CODES)
    except BotoCoreError as exc:
        raise DeliveryError(f"CloudFront unreachable: {type(exc).__name__}", transient=True)
    return answer["Invalidation"]["Id"]
