"""The researcher's dashboard: server-rendered pages behind the login.

access.py     who may see or change a study (the REST API's rules: owner, shared edit/view, superuser)
selectors.py  reads for the pages (study list with progress, the gallery's rows)
views.py      study list, study detail (progress, links, QR code), lifecycle with a confirmation, clone
design.py     create a study, its settings, stimulus uploads (image or zip), variants, removal
forms.py      the design pages' forms (they parse; the services validate)
qr.py         the participant link as a QR code (SVG, segno)
images.py     the gallery's pictures (stimulus, human and model maps, top regions) as PNG
preview.py    take a study as a participant without storing anything
The report, figures, tables and exports are `studyserver/researcher/dashboard/report.py`; routes in docs/dashboard.md.
"""
