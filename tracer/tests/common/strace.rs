//! strace's log read back: every read-family call with its descriptor,
//! request size and result, to hold the tracer's figures against.
#![allow(dead_code)]

/// One read-family call as strace -y shows it.
pub struct StraceRead {
    pub pid: u64,
    pub syscall: String,
    /// The file as strace -y shows it (the tracer's view: a chroot's
    /// files with the root's path in front).
    pub path: String,
    pub request: u64,
    pub ret: i64,
}

/// Parses `PID NAME(FD</path>, ...) = RET` lines of
/// `strace -f -y -s 8 -e trace=read,pread64,readv,preadv,preadv2`.
pub fn parse_strace(log: &str) -> Vec<StraceRead> {
    let mut reads = Vec::new();
    for line in log.lines() {
        let bad = || panic!("unexpected strace line: {line}");
        let (pid, rest) = line.split_once(' ').unwrap_or_else(bad);
        let rest = rest.trim_start();
        if rest.starts_with("+++") || rest.starts_with("---") {
            continue;
        }
        assert!(
            !rest.contains("unfinished") && !rest.contains("resumed"),
            "interleaved strace output, cannot count: {line}"
        );
        let (syscall, args) = rest.split_once('(').unwrap_or_else(bad);
        let (args, ret) = args.rsplit_once(") = ").unwrap_or_else(bad);
        let ret: i64 = ret.split_whitespace().next().unwrap().parse().unwrap();
        // Descriptor as `3</path>`; a bad descriptor has no path.
        let path = match (args.find('<'), args.find(">, ")) {
            (Some(open), Some(close)) if open < close => args[open + 1..close].to_owned(),
            _ => String::new(),
        };
        let request = match syscall {
            // read(fd, buf, count): count is last; pread64(fd, buf, count, pos): next to last.
            "read" => args.rsplit(", ").next().unwrap().parse().unwrap(),
            "pread64" => args.rsplit(", ").nth(1).unwrap().parse().unwrap(),
            _ => args
                .split("iov_len=")
                .skip(1)
                .map(|s| {
                    s.split(|c: char| !c.is_ascii_digit())
                        .next()
                        .unwrap()
                        .parse::<u64>()
                        .unwrap()
                })
                .sum(),
        };
        reads.push(StraceRead {
            pid: pid.parse().unwrap(),
            syscall: syscall.to_owned(),
            path,
            request,
            ret,
        });
    }
    reads
}
