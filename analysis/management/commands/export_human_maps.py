"""python manage.py export_human_maps SLUG --out DIR [--format npy|png|npz] [--task-kind KIND]"""
from django.core.management.base import BaseCommand, CommandError

from annotations.models import Study

from ...exports import FORMATS, DirectorySink, human_maps_export


class Command(BaseCommand):
    help = "Export a study's human maps (stimulus resolution), fixation maps, images and manifest for training."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--out", required=True, help="folder to write (created)")
        parser.add_argument("--format", default="npy", choices=FORMATS)
        parser.add_argument("--task-kind", default=None, help="only this task kind (default: every kind of the study)")

    def handle(self, *args, slug, out, format, task_kind, **options):
        study = Study.objects.filter(slug=slug).first()
        if study is None:
            raise CommandError(f"no study {slug!r}")
        try:
            manifest = human_maps_export(study, DirectorySink(out), fmt=format, task_kind=task_kind)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        entries = manifest["entries"]
        with_map = sum(e["has_map"] for e in entries)
        self.stdout.write(
            f"{out}: {len(entries)} entries ({with_map} with a human map, {len(entries) - with_map} without responses), format {format}"
        )
