"""API tokens stored as digests (README: Security model, docs/api.md).

Each key saved in clear before this becomes its digest, so a token issued before keeps working
with the same secret. The digest is computed here as `releases.services.api_tokens.token_digest`
computes it today, copied so that this step never changes with that code.
"""

import hashlib

from django.db import migrations


def digest(secret: str) -> str:
    return "h$" + hashlib.sha256(secret.encode()).hexdigest()[:38]


def keys_to_digests(apps, schema_editor):
    Token = apps.get_model("authtoken", "Token")
    db = schema_editor.connection.alias
    clear = Token.objects.using(db).exclude(key__startswith="h$")
    for key in list(clear.values_list("key", flat=True)):
        # One UPDATE of the primary key: the row keeps its user and creation time (nothing
        # refers to a token's key), and sends no signal: no audit event, no second digest.
        Token.objects.using(db).filter(key=key).update(key=digest(key))


class Migration(migrations.Migration):
    dependencies = [
        ("authtoken", "0004_alter_tokenproxy_options"),
        ("releases", "0008_review_console"),
    ]

    # Backwards leaves the digests: a secret cannot be had back from one. Code from before this
    # step refuses those tokens; issue new ones.
    operations = [migrations.RunPython(keys_to_digests, migrations.RunPython.noop)]
