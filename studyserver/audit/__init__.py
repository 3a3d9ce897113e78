"""The platform's one audit log: who deleted, archived, restored, erased, excluded or re-included
what, and when; who created or changed a researcher account.

It sits in the bottom layer: it imports none of the apps, and an entry names its study by id and
slug copied as plain values, so a deleted study's entries survive it. Entries are only ever added
(`services.audit_record`); nothing in the platform changes or deletes them, and the admin shows them
read-only. Reads: `selectors.audit_entries`, `manage.py audit`.
"""
