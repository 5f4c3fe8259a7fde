"""Reads a Perfetto trace with Perfetto's official Python bindings (the
PyPI `perfetto` wheel's perfetto_trace_pb2) and prints what it holds as
JSON for the --perfetto test: process and thread tracks, slices (with
their duration and interned callstack), instants (with their flows),
counter values (with their track and process),
samples (with their frames, outermost first), whether the packets are in
time order and whether every slice was closed.

Usage: PYTHONPATH=BINDINGS perfetto_summary.py TRACE
"""
import collections, json, sys
from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb

trace = pb.Trace()
trace.ParseFromString(open(sys.argv[1], "rb").read())
tracks = {}
interned = {"functions": {}, "frames": {}, "callstacks": {}, "paths": {}}
out = collections.defaultdict(list)
open_slices = collections.defaultdict(list)
last_ts = 0
ordered = True
for p in trace.packet:
    if p.HasField("track_descriptor"):
        d = p.track_descriptor
        tracks[d.uuid] = d
        if d.HasField("process"):
            out["processes"].append({"pid": d.process.pid, "name": d.process.process_name,
                                     "cmdline": list(d.process.cmdline)})
        elif d.HasField("thread"):
            out["threads"].append({"pid": d.thread.pid, "tid": d.thread.tid,
                                   "name": d.thread.thread_name})
        else:
            track = {"name": d.name, "parent": d.parent_uuid}
            parent = tracks.get(d.parent_uuid)
            if parent is not None and parent.HasField("process"):
                track["pid"] = parent.process.pid
            if d.HasField("counter"):
                track["unit"] = pb.CounterDescriptor.Unit.Name(d.counter.unit)
            out["tracks"].append(track)
    if p.HasField("interned_data"):
        i = p.interned_data
        for s in i.function_names: interned["functions"][s.iid] = s.str.decode()
        for s in i.source_paths: interned["paths"][s.iid] = s.str.decode()
        for f in i.frames: interned["frames"][f.iid] = f
        for c in i.callstacks: interned["callstacks"][c.iid] = list(c.frame_ids)
    if p.HasField("timestamp"):
        if p.timestamp < last_ts: ordered = False
        last_ts = p.timestamp
    def frames_of(iid):
        fs = []
        for fid in interned["callstacks"][iid]:
            f = interned["frames"][fid]
            fs.append({"function": interned["functions"][f.function_name_id],
                       "file": interned["paths"].get(f.source_path_iid, ""), "line": f.line_number})
        return fs
    if p.HasField("track_event"):
        e = p.track_event
        d = tracks[e.track_uuid]
        owner = None
        if d.HasField("thread"): owner = {"tid": d.thread.tid, "pid": d.thread.pid}
        elif d.HasField("process"): owner = {"pid": d.process.pid}
        else:
            parent = tracks.get(d.parent_uuid)
            owner = {"track": d.name, "tid": parent.thread.tid if parent is not None and parent.HasField("thread") else None}
        args = {}
        for a in e.debug_annotations:
            for k in ("string_value", "int_value", "uint_value"):
                if a.HasField(k): args[a.name] = getattr(a, k)
        if e.type == pb.TrackEvent.TYPE_SLICE_BEGIN:
            s = {"name": e.name, "ts": p.timestamp, "owner": owner, "args": args}
            if e.HasField("callstack_iid"): s["stack"] = frames_of(e.callstack_iid)
            open_slices[e.track_uuid].append(s)
        elif e.type == pb.TrackEvent.TYPE_SLICE_END:
            s = open_slices[e.track_uuid].pop()
            s["dur"] = p.timestamp - s["ts"]
            out["slices"].append(s)
        elif e.type == pb.TrackEvent.TYPE_COUNTER:
            out["counters"].append({"track": d.name, "pid": tracks[d.parent_uuid].process.pid,
                                    "ts": p.timestamp, "value": e.counter_value})
        else:
            out["instants"].append({"name": e.name, "ts": p.timestamp, "owner": owner, "args": args,
                                    "flows": list(e.flow_ids), "ends_flows": list(e.terminating_flow_ids)})
    if p.HasField("perf_sample"):
        s = p.perf_sample
        out["samples"].append({"pid": s.pid, "tid": s.tid, "ts": p.timestamp, "frames": frames_of(s.callstack_iid)})
out["ordered"] = ordered
out["unclosed"] = sum(len(v) for v in open_slices.values())
json.dump(out, sys.stdout)
