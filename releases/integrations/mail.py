"""E-mail through Django's mail backend (`EMAIL_URL`: SMTP in production)."""

from __future__ import annotations

import smtplib

from django.conf import settings
from django.core.mail import EmailMessage

from releases.integrations.outbound import DeliveryError


def mail_send(*, subject: str, body: str, recipients: list[str]) -> None:
    """One message to all `recipients` (one team, one mail)."""
    message = EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    try:
        message.send()
    except ValueError as exc:  # BadHeaderError: a line break in a header
        raise DeliveryError(f"the message was refused: {exc}", transient=False)
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryError(
            f"every recipient was refused: {sorted(exc.recipients)}", transient=False
        )
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(f"SMTP authentication failed ({exc.smtp_code})", transient=False)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"cannot send: {type(exc).__name__}: {exc}", transient=True)
