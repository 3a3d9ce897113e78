"""python manage.py export_responses SLUG --out FILE [--format jsonl|csv]"""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotations.models import Study

from ...exports import responses_csv, responses_jsonl


class Command(BaseCommand):
    help = "Export a study's raw responses (every payload as stored, stimulus px and ms) as JSONL or CSV."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--out", required=True, help="file to write")
        parser.add_argument("--format", default="jsonl", choices=("jsonl", "csv"))

    def handle(self, *args, slug, out, format, **options):
        study = Study.objects.filter(slug=slug).first()
        if study is None:
            raise CommandError(f"no study {slug!r}")
        lines = responses_jsonl(study) if format == "jsonl" else responses_csv(study)
        count = 0
        with Path(out).open("w", encoding="utf-8", newline="") as handle:
            for line in lines:
                handle.write(line)
                count += 1
        self.stdout.write(f"{out}: {count - (format == 'csv')} responses ({format})")
