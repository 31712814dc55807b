"""The names of production's two control files (docs/bucket-layout.md), defined once.

`desktop-builds.json` lists every build that may be served; `desktop-releases.json` says which
build each client gets (latest, rollouts, redirections). Both sit at the bucket's root.
"""

BUILDS_FILE = "desktop-builds.json"
RELEASES_FILE = "desktop-releases.json"
CONTROL_FILES = (BUILDS_FILE, RELEASES_FILE)
