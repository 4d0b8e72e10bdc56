"""Fuzzing the mapping service's API on a running lab: every request gets a JSON answer
with a 2xx/4xx status, the service never dies, and its table stays consistent."""
import json
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.labtools import MULTI_VPC
from vpclab.running.api_client import _UnixConnection

NAMES = st.sampled_from(["ZIGI-VM1", "ZIGI-VM2", "WEB-VM1", "NEW", "X Y", "", "../etc", "ZIGI-VM9"])
FIELD = st.one_of(st.none(), st.integers(-1, 70000), st.text(max_size=10), st.sampled_from(
    ["ZIGI-VPC1", "ZIGI-VPC2", "host1", "host3", "host9", "10.0.0.60", "10.0.0.148", "10.0.0.3",
     "10.0.9.9", "02:00:00:00:00:60", "01:00:00:00:00:01", "eni-0b2c", "bogus"]), st.lists(st.integers(), max_size=2))
BODY = st.one_of(st.none(), st.dictionaries(
    st.sampled_from(["name", "vpc", "host", "ip", "mac", "eni", "port", "colour"]), FIELD, max_size=7))
REQUEST = st.tuples(
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    st.one_of(st.sampled_from(["/mappings", "/vms", "/routers", "/stats", "/", "/nope"]),
              st.builds(lambda n: f"/vms/{n}", NAMES),
              st.builds(lambda v, i: f"/mappings/{v}/{i}", st.sampled_from(["ZIGI-VPC1", "NOPE"]),
                        st.sampled_from(["10.0.0.148", "10.0.0.999", "x"]))),
    BODY, st.booleans())


def test_api_answers_everything_and_stays_consistent(vpclab_lab):
    lab = vpclab_lab(MULTI_VPC)
    service = [p for p in lab.state.processes() if p.role == "mapping-service"][-1]
    sock = str(lab.state.dir / "mapping.sock")        # the raw HTTP API is what is fuzzed
    statuses = []

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
    @given(REQUEST)
    def one_request(request):
        method, path, body, garble = request
        data = b"{not json" if garble else (json.dumps(body).encode() if body is not None else None)
        conn = _UnixConnection(sock, 15)
        conn.request(method, quote(path), body=data)
        response = conn.getresponse()
        payload = json.loads(response.read())
        conn.close()
        statuses.append(response.status)
        assert response.status in (200, 400, 404, 405), (method, path, body, response.status)
        if response.status != 200:
            assert payload["error"]
    one_request()
    assert {200, 400, 404} <= set(statuses), statuses     # both paths were exercised
    assert service.is_alive()                                 # never crashed, never restarted
    assert not [e for e in lab.state.progress.read() if e["event"] == "process_died"]
    mappings = lab.mappings()
    keys = [(m["vpc"], m["ip"]) for m in mappings]
    assert len(keys) == len(set(keys)) and len({m["mac"] for m in mappings}) == len(mappings)
