"""`python manage.py explain_study SLUG [--no-wait]`: queue a study's explanation jobs (creating the
missing ones; done jobs are never recomputed) and show a progress bar until all are done or failed."""
import time

from django.core.management.base import BaseCommand, CommandError

from annotations.models import Study
from studyserver.errors import InvalidInput

from ...models import ExplanationJob
from ...services.jobs import explanation_jobs_create


def progress_bar(done: int, failed: int, total: int, width: int = 30) -> str:
    filled = int(width * (done + failed) / total) if total else width
    return f"[{'#' * filled}{'.' * (width - filled)}] {done + failed}/{total} ({done} done, {failed} failed)"


class Command(BaseCommand):
    help = "Queue a study's explanation jobs and wait for them with a progress bar."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--no-wait", action="store_true", help="only queue the jobs")
        parser.add_argument("--timeout", type=float, default=0, help="stop waiting after this many seconds (0: never)")
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between progress updates")

    def handle(self, *args, **options):
        study = Study.objects.filter(slug=options["slug"]).first()
        if study is None:
            raise CommandError(f"no study with slug {options['slug']!r}")
        try:
            jobs = explanation_jobs_create(study=study)
        except InvalidInput as exc:
            raise CommandError(f"study {study.slug}: {exc.message}") from None
        ids = [job.pk for job in jobs]
        new = sum(1 for job in jobs if getattr(job, "created_now", False))
        self.stdout.write(f"{study.slug}: {len(ids)} jobs ({new} new)")
        if options["no_wait"]:
            return
        started = time.monotonic()
        while True:
            counts = dict(_counts(ids))
            done, failed = counts.get("done", 0), counts.get("failed", 0)
            self.stdout.write("\r" + progress_bar(done, failed, len(ids)), ending="")
            self.stdout.flush()
            if done + failed == len(ids):
                self.stdout.write("")
                break
            if options["timeout"] and time.monotonic() - started > options["timeout"]:
                self.stdout.write("")
                raise CommandError(f"timed out after {options['timeout']} s with {len(ids) - done - failed} jobs left")
            time.sleep(options["interval"])
        for job in ExplanationJob.objects.filter(pk__in=ids, status="failed"):
            self.stderr.write(f"failed: job {job.pk} {job.method_key}/{job.model_key} on {job.image_sha256[:8]}: {job.error}")


def _counts(ids):
    from django.db.models import Count

    rows = ExplanationJob.objects.filter(pk__in=ids).values("status").annotate(n=Count("id"))
    return [(row["status"], row["n"]) for row in rows]
