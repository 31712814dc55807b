"""Dates and times in the admin: unambiguous, to the second, with the UTC offset."""

DATETIME_FORMAT = "Y-m-d\\TH:i:sO"
SHORT_DATETIME_FORMAT = "Y-m-d\\TH:i:sO"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
