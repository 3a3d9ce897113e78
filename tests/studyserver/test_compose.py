"""docker-compose.yml cannot run here (no Docker engine): check it is valid and that every command
it names exists in this project; the integration tests run those same commands."""
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_five_services():
    services = compose()["services"]
    assert set(services) == {"postgres", "redis", "web", "worker-explain", "worker"}
    gpu = services["worker-explain"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"]
    explain = services["worker-explain"]["command"]
    assert explain[explain.index("-Q") + 1] == "explain" and explain[explain.index("--concurrency") + 1] == "1"
    assert services["worker"]["command"][services["worker"]["command"].index("-Q") + 1] == "default"


def test_every_command_exists_in_the_project():
    from celery.bin.celery import celery as celery_cli
    from django.core.management import get_commands

    import studyserver.wsgi  # noqa: F401 - gunicorn's target imports

    for name, service in compose()["services"].items():
        if name in ("postgres", "redis"):
            continue
        argv = service["command"]
        words = shlex.split(argv[2]) if argv[:2] == ["sh", "-c"] else argv
        for part in " ".join(words).split("&&"):
            cmd = part.split()
            if cmd[:2] == ["python", "manage.py"]:
                assert cmd[2] in get_commands(), f"{name}: manage.py {cmd[2]} does not exist"
            elif cmd[0] == "gunicorn":
                assert cmd[1] == "studyserver.wsgi"
            elif cmd[0] == "celery":
                assert cmd[1:3] == ["-A", "studyserver"] and cmd[3] == "worker" and "worker" in celery_cli.commands
            else:
                raise AssertionError(f"{name}: unexpected command {part!r}")
