//! /proc text a traced process shapes (its comm in `stat`, its mappings'
//! names in `maps`, its arguments, the cgroup names a container's
//! processes may create, the unix socket paths it binds): the parsers
//! take anything.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tracer::host::procfs::parse_cmdline(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = tracer::host::procfs::parse_stat(text);
    let _ = tracer::host::procfs::parse_nspid(text);
    let _ = tracer::host::procfs::net::parse_unix(text);
    let _ = tracer::host::procfs::net::parse_inet(text, tracer::host::procfs::net::Transport::Tcp);
    let _ = tracer::host::containers::cgroup::parse(text);
    let _ = tracer::host::containers::cgroup::paths(text);
    let _ = tracer::host::procfs::maps::parse_maps(text);
    let _ = tracer::python::interpreter::name_hint(text);
    let _ = tracer::report::format::printable(text);
    let _ = tracer::frame::Frame::parse(text);
});
