"""`manage.py demo`: the whole release flow on one machine, without any external account.

`todesktop_build` / `todesktop_origin` are the fake ToDesktop download host (the tests use it
too, through `tests.fakes`); `run` walks a demo build from ToDesktop to the download link.
"""
