"""Every outside system, one module each: the buckets (filesystem or S3), ToDesktop's download
host (with `egress`, where a download may connect), GitHub, and the notification and CDN-purge
clients. Only this package imports their client libraries (botocore/boto3, PyGithub, requests).

Each module raises its own error types, never a third-party exception: `buckets.BucketError`,
`todesktop.OriginError`, `github.GitHubError`, `outbound.DeliveryError` (saying whether a retry
may help); the services decide what to retry and record the outcome.
"""
