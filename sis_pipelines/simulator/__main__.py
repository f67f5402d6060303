"""``python -m sis_pipelines.simulator serve|export|canvas``."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from datetime import UTC, date, datetime
from pathlib import Path

from .canvas import CanvasSimulator
from .district import District
from .export import export_bundle
from .server import SimulatorServer
from .sis_gradebook import SisGradebook
from .teacher import a_course_with_grades
from .vendors import VENDORS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sis_pipelines.simulator")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("serve", "export"):
        p = sub.add_parser(name)
        p.add_argument("--vendor", choices=sorted(VENDORS), default="genesis")
        p.add_argument("--students", type=int, default=2000)
        p.add_argument("--seed", type=int, default=1)
        p.add_argument("--night", type=date.fromisoformat, default=date.today())
    serve, export = sub.choices["serve"], sub.choices["export"]
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--client-id", default="demo")
    serve.add_argument("--client-secret", default="demo-secret")
    serve.add_argument(
        "--gradebook-state", type=Path, help="keep the SIS gradebook in this JSON file across runs"
    )
    serve.add_argument(
        "--vendor-authorization",
        help="require this x-vendor-authorization value on gradebook calls (Infinite Campus)",
    )
    export.add_argument("--out", type=Path, required=True)
    canvas = sub.add_parser(
        "canvas",
        help="serve a tenant's simulated Canvas (the state the pipeline's runs keep in the data "
        "folder), so a teacher can grade through Canvas's API while the pipeline runs",
    )
    canvas.add_argument("--tenant", required=True)
    canvas.add_argument("--data", type=Path, default=Path("data"), help="SIS_PIPELINES_DATA_DIR")
    canvas.add_argument("--port", type=int, default=8790)
    canvas.add_argument("--token", default="demo-canvas-token")
    args = parser.parse_args(argv)
    if args.command == "canvas":
        return serve_canvas(args.tenant, args.data, args.port, args.token)
    district = District(args.students, args.seed)
    if args.command == "export":
        print(export_bundle(district, args.night, args.out))
        return 0
    sim = SimulatorServer(
        args.vendor,
        night=args.night,
        client_id=args.client_id,
        client_secret=args.client_secret,
        port=args.port,
        district=district,
        gradebook=SisGradebook(
            VENDORS[args.vendor].version, args.gradebook_state, args.vendor_authorization
        ),
    )
    sim.start()
    _ = sim.frames  # build the night before announcing the server, so no request waits for it
    profile = sim.profile
    print(
        f"OneRoster {profile.version} simulator ({profile.name}, {profile.auth}) for night {args.night}"
    )
    print(f"  base URL:  {sim.base_url}")
    print(f"  gradebook: {sim.gradebook_url}")
    if profile.auth == "oauth2":
        print(f"  token URL: {sim.token_url}")
    print(f"  client id: {args.client_id}   (Ctrl-C stops)", flush=True)
    return _serve_until_stopped(sim)


def _serve_until_stopped(sim: SimulatorServer | CanvasSimulator) -> int:
    """Serves until Ctrl-C or SIGTERM."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    sim.stop()
    return 0


def serve_canvas(tenant: str, data: Path, port: int, token: str) -> int:
    state = data / "simulator" / "canvas" / f"{tenant}.json"
    if not state.exists():
        print(f"no simulated Canvas for tenant {tenant!r} in {data}: run a night first (make demo)")
        return 2
    sim = CanvasSimulator(token=token, state_file=state, port=port).start()
    print(f"Simulated Canvas of {tenant}: {sim.base_url}   token: {token}   (Ctrl-C stops)")
    course = a_course_with_grades(sim, datetime.now(UTC))
    book = sim.gradebook(course) if course else None
    if book and book["enrollments"]:
        path = (
            f"/api/v1/courses/sis_course_id:{course}/assignments/{book['assignments'][-1]['id']}"
            f"/submissions/sis_user_id:{book['enrollments'][0]['sis_user_id']}"
        )
    else:
        path = "/api/v1/courses/sis_course_id:<course>/assignments/<id>/submissions/sis_user_id:<student>"
    print(
        f"  grade a submission: curl -X PUT -H 'Authorization: Bearer {token}' "
        f"{sim.base_url}{path} -d 'submission[posted_grade]=9'",
        flush=True,
    )
    return _serve_until_stopped(sim)


if __name__ == "__main__":
    sys.exit(main())
