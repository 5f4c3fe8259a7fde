"""An OTLP/HTTP profiles receiver for the --otlp tests: what an
OpenTelemetry Collector's otlp receiver does with a request, decoded with
OpenTelemetry's official Python bindings (PyPI opentelemetry-proto,
$TRACER_OTLP_PY on PYTHONPATH).

    otlp_receiver.py FAIL [CERT KEY]

Listens on 127.0.0.1 (a free port; over TLS with CERT and KEY, PEM files),
prints "listening PORT"; answers the
first FAIL POSTs with 503 (a collector overloaded: worth retrying), then
decodes each POST to /v1development/profiles as an
ExportProfilesServiceRequest and prints one JSON line per request:
{"path", "bytes", "headers", "resources": [{"attributes": {...}, "profiles": [{"sample_type",
"period_type", "period", "time_unix_nano", "duration_nano", "profile_id",
"samples": [{"frames": [innermost first], "lines": [...], "attributes":
{...}, "values": [...]}]}]}]} - every index resolved through the
request's dictionary, whose zero entries are checked. A request it cannot
decode is answered 400 and printed as {"error": TRACEBACK}.
"""
import json
import ssl
import sys
import traceback
from http.server import BaseHTTPRequestHandler, HTTPServer

from opentelemetry.proto.collector.profiles.v1development import (
    profiles_service_pb2 as service,
)

failures_left = int(sys.argv[1])


def value(any_value, strings):
    kind = any_value.WhichOneof("value")
    if kind == "string_value_strindex":
        return strings[any_value.string_value_strindex]
    return getattr(any_value, kind) if kind else None


def decode(body):
    request = service.ExportProfilesServiceRequest()
    request.ParseFromString(body)
    d = request.dictionary
    strings = list(d.string_table)
    # Index 0 of every table is its zero value.
    assert strings[0] == "", strings[:3]
    for table in (d.location_table, d.function_table, d.stack_table,
                  d.attribute_table, d.mapping_table, d.link_table):
        assert len(table) >= 1 and table[0].ByteSize() == 0, table[:1]

    def attributes(indices):
        out = {}
        for i in indices:
            a = d.attribute_table[i]
            out[strings[a.key_strindex]] = value(a.value, strings)
        return out

    resources = []
    for rp in request.resource_profiles:
        attrs = {kv.key: value(kv.value, strings) for kv in rp.resource.attributes}
        profiles = []
        for sp in rp.scope_profiles:
            for p in sp.profiles:
                samples = []
                for s in p.samples:
                    stack = d.stack_table[s.stack_index]
                    frames, lines = [], []
                    for li in stack.location_indices:
                        location = d.location_table[li]
                        line = location.lines[0]
                        function = d.function_table[line.function_index]
                        frames.append(strings[function.name_strindex])
                        lines.append(line.line)
                    samples.append({
                        "frames": frames,
                        "lines": lines,
                        "attributes": attributes(s.attribute_indices),
                        "values": list(s.values),
                    })
                profiles.append({
                    "scope": sp.scope.name,
                    "sample_type": [strings[p.sample_type.type_strindex],
                                    strings[p.sample_type.unit_strindex]],
                    "period_type": [strings[p.period_type.type_strindex],
                                    strings[p.period_type.unit_strindex]],
                    "period": p.period,
                    "time_unix_nano": p.time_unix_nano,
                    "duration_nano": p.duration_nano,
                    "profile_id": p.profile_id.hex(),
                    "samples": samples,
                })
        resources.append({"attributes": attrs, "profiles": profiles})
    return resources


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        global failures_left
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if failures_left > 0:
            failures_left -= 1
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            print(json.dumps({"refused": self.path}), flush=True)
            return
        try:
            assert self.headers["Content-Type"] == "application/x-protobuf"
            line = {
                "path": self.path,
                "bytes": len(body),
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "resources": decode(body),
            }
        except Exception:
            # Said to the test, which fails with it; refused for good.
            print(json.dumps({"error": traceback.format_exc()}), flush=True)
            self.send_response(400)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        answer = service.ExportProfilesServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
        print(json.dumps(line), flush=True)

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Handler)
if len(sys.argv) > 3:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[2], sys.argv[3])
    server.socket = context.wrap_socket(server.socket, server_side=True)
print(f"listening {server.server_address[1]}", flush=True)
server.serve_forever()
