use super::{state::tests::*, *};

const UID: &str = "0d5c6e6f-83a5-4f2b-9c1d-2e3f4a5b6c7d";

fn podman_cgroup(id: &str) -> String {
    format!("9:name=systemd:/libpod_parent/libpod-{id}\n0::/libpod_parent/libpod-{id}\n")
}

/// Made-up processes: 100 and 101 in podman container [`ID`], 102 its
/// conmon, 103 on the host, 104 in a Kubernetes pod; others gone.
fn fake_cgroup(pid: u32) -> Option<String> {
    Some(match pid {
        100 | 101 => podman_cgroup(ID),
        102 => format!("0::/machine.slice/libpod-conmon-{ID}.scope\n"),
        103 => "0::/user.slice/user-0.slice/session-1.scope\n".into(),
        104 => format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{}.scope/sub\n",
            UID.replace('-', "_"),
            ID.replace('8', "7")
        ),
        _ => return None,
    })
}

#[test]
fn a_process_gets_its_containers_identity_and_name() {
    let fake = FakeRoots::new("of-pid");
    podman_state(&fake, ID, "tr-probe");
    let mut containers = Containers::new(fake.roots.clone(), fake_cgroup);
    let c = containers.of_pid(100).unwrap();
    assert_eq!(
        c,
        Container {
            id: ID.into(),
            runtime: "podman".into(),
            name: Some("tr-probe".into()),
            ..Container::default()
        }
    );
    assert_eq!(c.describe(), "tr-probe (podman 88f77ad08040)");
    // conmon, the host, a gone process: none.
    for pid in [102, 103, 999] {
        assert_eq!(containers.of_pid(pid), None, "{pid}");
    }
    // A Kubernetes container whose runtime left no state: id and pod uid.
    let k8s = containers.of_pid(104).unwrap();
    assert_eq!(
        (k8s.runtime.as_str(), k8s.pod_uid.as_deref(), k8s.name),
        ("containerd", Some(UID), None)
    );
}

#[test]
fn state_is_read_once_per_container_and_again_while_a_young_one_is_unnamed() {
    let fake = FakeRoots::new("cache");
    podman_state(&fake, ID, "first");
    let mut containers = Containers::new(fake.roots.clone(), fake_cgroup);
    assert_eq!(
        containers.of_pid(100).unwrap().name.as_deref(),
        Some("first")
    );
    // Renamed on disk: the cache answers (read once per container).
    podman_state(&fake, ID, "second");
    assert_eq!(
        containers.of_pid(101).unwrap().name.as_deref(),
        Some("first")
    );
    // The container's state gone (it exited): still its identity.
    std::fs::remove_dir_all(&fake.dir).unwrap();
    let mut fresh = Containers::new(fake.roots.clone(), fake_cgroup);
    let c = fresh.of_pid(100).unwrap();
    assert_eq!((c.id.as_str(), c.name), (ID, None));
    assert!(worth_rereading(
        false,
        Duration::from_secs(2),
        Duration::from_secs(1)
    ));
    assert!(!worth_rereading(
        true,
        Duration::from_secs(2),
        Duration::from_secs(1)
    ));
    assert!(!worth_rereading(
        false,
        Duration::from_secs(2),
        Duration::ZERO
    ));
    assert!(!worth_rereading(
        false,
        REREAD_WHILE,
        Duration::from_secs(5)
    ));
}

#[test]
fn the_cache_is_bounded() {
    let mut containers = Containers::new(FakeRoots::new("bound").roots.clone(), |_| None);
    for n in 0..MAX_CACHED + 10 {
        let id = format!("{n:064x}");
        let c = containers.of_cgroup(&format!("0::/system.slice/docker-{id}.scope\n"));
        assert_eq!(c.map(|c| c.id), Some(id));
    }
    assert_eq!(containers.cache.len(), MAX_CACHED);
    // The least recently used went first.
    assert!(!containers.cache.contains_key(&format!("{:064x}", 0)));
}

fn running() -> Vec<Running> {
    let fake = FakeRoots::new("running");
    podman_state(&fake, ID, "tr-probe");
    let mut containers = Containers::new(fake.roots.clone(), fake_cgroup);
    containers.gather((100..=105).filter_map(|pid| Some((pid, fake_cgroup(pid)?))))
}

#[test]
fn running_containers_with_their_processes_and_cgroups() {
    let all = running();
    assert_eq!(all.len(), 2);
    let probe = all
        .iter()
        .find(|r| r.container.name.as_deref() == Some("tr-probe"))
        .unwrap();
    assert_eq!(probe.pids, [100, 101]);
    let path = format!("/libpod_parent/libpod-{ID}");
    assert_eq!(
        (probe.cgroup_v2.as_deref(), probe.cgroup_v1.as_deref()),
        (Some(&*path), Some(&*path))
    );
    // The container's own cgroup, not the sub-cgroup its process is in.
    let k8s = all.iter().find(|r| r.pids == [104]).unwrap();
    assert!(k8s.cgroup_v2.as_deref().unwrap().ends_with(".scope"));
    assert_eq!(k8s.cgroup_v1, None);
}

#[test]
fn lookup_by_id_prefix_or_name() {
    let all = running();
    let name = |r: Result<Running, ContainerError>| r.map(|r| r.container.id);
    assert_eq!(name(find(all.clone(), ID)).unwrap(), ID);
    assert_eq!(name(find(all.clone(), "tr-probe")).unwrap(), ID);
    assert_eq!(name(find(all.clone(), "88F7")).unwrap(), ID);
    assert_eq!(
        name(find(all.clone(), "77f7")).unwrap(),
        ID.replace('8', "7")
    );
    let err = find(all.clone(), "nope").unwrap_err().to_string();
    assert!(
        err.contains("tr-probe (podman 88f77ad08040)") && err.contains("77f77ad07040"),
        "{err}"
    );
    let err = find(all.clone(), "88f").unwrap_err().to_string();
    assert!(err.contains("at least 4 hex digits"), "{err}");
    assert!(matches!(
        find(Vec::new(), "x"),
        Err(ContainerError::NoMatch { running, .. }) if running.starts_with("no container is running")
    ));
    // Two ids that start alike: both listed.
    let mut twins = all.clone();
    let k8s = twins.iter_mut().find(|r| r.pids == [104]).unwrap();
    k8s.container.id = format!("88f7{}", &ID[..60]);
    let err = find(twins, "88f7").unwrap_err().to_string();
    assert!(
        err.contains("matches several containers")
            && err.contains("tr-probe")
            && err.contains("(containerd)"),
        "{err}"
    );
}

#[test]
fn lookup_by_kubernetes_names() {
    let mut all = running();
    let k8s = &mut all.iter_mut().find(|r| r.pids == [104]).unwrap().container;
    k8s.name = Some("app".into());
    k8s.pod = Some("web-0".into());
    k8s.namespace = Some("shop".into());
    assert_eq!(
        k8s.describe(),
        "app in pod shop/web-0 (containerd 77f77ad07040)"
    );
    for query in ["app", "web-0/app", "shop/web-0/app"] {
        assert_eq!(find(all.clone(), query).unwrap().pids, [104], "{query}");
    }
    // The same container name in two pods: ambiguous by name alone.
    let mut other = all.iter().find(|r| r.pids == [104]).unwrap().clone();
    other.container.id = ID.replace('8', "6");
    other.container.pod = Some("web-1".into());
    all.push(other);
    assert!(matches!(
        find(all.clone(), "app"),
        Err(ContainerError::Ambiguous { .. })
    ));
    assert_eq!(
        find(all, "web-1/app").unwrap().container.id,
        ID.replace('8', "6")
    );
}

#[test]
fn this_hosts_processes_are_on_the_host() {
    // Wherever the test runs, the scan and its own lookup agree.
    let mut containers = Containers::default();
    let me = std::process::id();
    let mine = containers.of_pid(me);
    let listed = containers
        .running()
        .into_iter()
        .any(|r| r.pids.contains(&me));
    assert_eq!(mine.is_some(), listed);
}
