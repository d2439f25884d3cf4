import cProfile, gzip, pstats, time, io
import pytest
from bench.ingest import Options, batch_points, json_body, otlp_body
from observability.tests.test_api import bearer

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("kind", ["json", "otlp"])
def test_prof(make_application, kind):
    _, key = make_application("shop")
    o = Options(1, 1, 1, 5000, 1000, 0, 0, True)
    base = time.time() - 3000
    bodies = [(json_body if kind == "json" else otlp_body)(batch_points(i, o, base)) for i in range(12)]
    path, ct = ("/api/metrics/ingest", "application/json") if kind == "json" else ("/v1/metrics", "application/x-protobuf")
    client = bearer(key)
    client.generic("POST", path, bodies[0], content_type=ct, HTTP_CONTENT_ENCODING="gzip")
    prof = cProfile.Profile()
    started = time.perf_counter()
    prof.enable()
    for body in bodies[1:]:
        r = client.generic("POST", path, body, content_type=ct, HTTP_CONTENT_ENCODING="gzip")
        assert r.status_code == 200
    prof.disable()
    elapsed = time.perf_counter() - started
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumtime").print_stats(40)
    print(kind, f"{11 * 5000 / elapsed:,.0f} points/s in-process (one client, no HTTP)")
    print(out.getvalue())
