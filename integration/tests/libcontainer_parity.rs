//! The libcontainer shim against runc, process by process: one table of spec variants,
//! each run by the runc shim (`containerd-shim-skiff-v2`, with the system's runc 1.1.5
//! and with runc 1.5.1 where it is installed) and by the libcontainer shim
//! (`containerd-shim-skiff-youki-v2`), the container's init and an exec in it. Each
//! process reports what it sees of itself (seccomp, no_new_privs, capabilities, ids,
//! LSM attributes, limits, umask, oom_score_adj, scheduling, personality, cgroups, its
//! mount table, whether a blocked syscall fails) and the reports must agree.
//!
//! runc 1.5.1 is the reference where it is installed; where runc 1.1.5 does otherwise
//! (it applies no umask, personality, scheduler or I/O priority to an exec, knows no
//! scheduler or I/O priority at all) the table [`RUNC_1_1_DIFFERS`] says so, and only
//! there is 1.1.5 not compared. Nothing is excused for the libcontainer shim: a
//! difference fails, unless README's table of what that shim does not support names it
//! and the shim refuses the spec with that reason (`Variant::refused`). The machinery
//! is in `src/parity.rs`.
//!
//! The exec's process is the container's with other arguments, as containerd and its
//! CRI make it.

use serde_json::{json, Value};
use skiff_integration::parity::{compare, Variant, LISTENER};

/// Where runc 1.1.5 is known to do otherwise than runc 1.5.1: (variant, process, key,
/// why). These keys are not compared with 1.1.5; everything else is.
const RUNC_1_1_DIFFERS: &[(&str, &str, &str, &str)] = &[
    (
        "umask",
        "exec",
        "umask",
        "runc 1.1.5 leaves an exec the umask it inherits; 1.2 and later set the container's",
    ),
    (
        "personality",
        "exec",
        "personality",
        "runc 1.1.5 sets no personality for an exec; 1.2 and later the container's",
    ),
    (
        "personality",
        "init",
        "personality",
        "runc 1.1.5 knows no personality (runtime-spec 1.1)",
    ),
    (
        "rlimits",
        "exec",
        "[limits]",
        "runc 1.1.5's exec may pass on the soft RLIMIT_NOFILE its Go runtime raised to the \
         hard limit (some runs show 512 for the 256 asked)",
    ),
    (
        "rootfs-shared",
        "*",
        "[mounts]",
        "runc 1.1.5 does not make the container's root shared again after pivot_root",
    ),
    (
        "rootfs-rshared",
        "*",
        "[mounts]",
        "runc 1.1.5 does not make the container's mounts shared again after pivot_root",
    ),
    (
        "vol-rshared",
        "*",
        "[mounts]",
        "runc 1.1.5 does not make the container's mounts shared again after pivot_root",
    ),
    (
        "scheduler",
        "*",
        "nice policy rt_priority",
        "runc 1.1.5 knows no scheduler (runtime-spec 1.1)",
    ),
    (
        "io-priority",
        "*",
        "ionice",
        "runc 1.1.5 knows no I/O priority (runtime-spec 1.1)",
    ),
];

fn runc_1_1_differs(variant: &str, process: &str, key: &str) -> bool {
    RUNC_1_1_DIFFERS
        .iter()
        .any(|(v, p, k, _)| *v == variant && (*p == "*" || *p == process) && *k == key)
}

/// Has the probe make and open a device node of the host's first loop device (b 7:0),
/// which no default device rule allows: the rules refuse both with EPERM.
fn try_a_device(s: &mut Value) {
    set_caps(s, &["CAP_MKNOD", "CAP_KILL"]);
    let env = s["process"]["env"].as_array_mut().unwrap();
    env.push(json!("PARITY_DEVICE=b 7 0"));
}

fn set_caps(spec: &mut Value, caps: &[&str]) {
    let caps = json!(caps);
    spec["process"]["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps,
    });
}

/// A seccomp profile that allows everything but `blocked`, which fail with EPERM.
fn blocking(blocked: &[&str]) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": blocked, "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    })
}

/// What a process of this table needs, for a profile that refuses everything else
/// (containerd's default profile is of this kind: an allow list, EPERM for the rest).
/// `accept4`, `sendmsg` and `recvfrom` are there for libcontainer: its init loads the filter, then
/// reports ready and waits for Start on sockets, where runc's opens a FIFO (README says
/// so; containerd's and Docker's default profiles allow both).
const ALLOWED: &[&str] = &[
    "accept4",
    "sendmsg",
    "recvfrom",
    "access",
    "arch_prctl",
    "brk",
    "capget",
    "capset",
    "chdir",
    "clock_getres",
    "clock_gettime",
    "clock_nanosleep",
    "clone",
    "clone3",
    "close",
    "close_range",
    "dup",
    "dup2",
    "dup3",
    "epoll_create1",
    "epoll_ctl",
    "epoll_pwait",
    "epoll_wait",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fchdir",
    "fcntl",
    "fstat",
    "fstatfs",
    "futex",
    "getcwd",
    "getdents64",
    "getegid",
    "geteuid",
    "getgid",
    "getgroups",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresuid",
    "getrlimit",
    "getsid",
    "gettid",
    "gettimeofday",
    "getuid",
    "ioctl",
    "ioprio_get",
    "kill",
    "lseek",
    "lstat",
    "madvise",
    "mmap",
    "mprotect",
    "mremap",
    "munmap",
    "nanosleep",
    "newfstatat",
    "open",
    "openat",
    "pipe",
    "pipe2",
    "poll",
    "ppoll",
    "prctl",
    "pread64",
    "prlimit64",
    "read",
    "readlink",
    "readlinkat",
    "readv",
    "rseq",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "rt_sigsuspend",
    "sched_getaffinity",
    "sched_getparam",
    "sched_getscheduler",
    "sched_yield",
    "set_robust_list",
    "set_tid_address",
    "setpgid",
    "setsid",
    "sigaltstack",
    "stat",
    "statfs",
    "statx",
    "sysinfo",
    "tgkill",
    "time",
    "uname",
    "vfork",
    "wait4",
    "waitid",
    "write",
    "writev",
];

fn allow_list() -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ALLOWED, "action": "SCMP_ACT_ALLOW"}],
    })
}

fn seccomp_table() -> Vec<Variant> {
    vec![
        row("seccomp-notify", |s| {
            set_caps(s, &["CAP_SYS_ADMIN", "CAP_KILL"]);
            s["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": LISTENER,
                "listenerMetadata": "parity",
                "syscalls": [{"names": ["sethostname"], "action": "SCMP_ACT_NOTIFY"}],
            });
        }),
        row("seccomp-allow-list", |s| {
            s["linux"]["seccomp"] = allow_list()
        }),
        row("seccomp-blocks-sethostname", |s| {
            set_caps(s, &["CAP_SYS_ADMIN", "CAP_KILL"]);
            s["linux"]["seccomp"] = blocking(&["sethostname"]);
        }),
        row("seccomp-without-nnp", |s| {
            set_caps(s, &["CAP_SYS_ADMIN", "CAP_KILL"]);
            s["process"]
                .as_object_mut()
                .unwrap()
                .remove("noNewPrivileges");
            s["linux"]["seccomp"] = blocking(&["sethostname", "unshare"]);
        }),
        row("seccomp-nnp-false-non-root", |s| {
            s["process"]["noNewPrivileges"] = json!(false);
            s["process"]["user"] = json!({"uid": 1000, "gid": 1000});
            s["linux"]["seccomp"] = blocking(&["sethostname"]);
        }),
    ]
}

#[test]
fn seccomp_filters_agree_with_runc_for_init_and_exec() {
    compare(&seccomp_table(), runc_1_1_differs);
}

fn process_table() -> Vec<Variant> {
    vec![
        row("baseline", |_| {}),
        row("caps-dropped", |s| {
            set_caps(s, &["CAP_KILL"]);
            s["process"]
                .as_object_mut()
                .unwrap()
                .remove("noNewPrivileges");
        }),
        row("caps-ambient", |s| {
            let caps = json!(["CAP_NET_BIND_SERVICE", "CAP_KILL"]);
            s["process"]["capabilities"] = json!({
                "bounding": caps, "effective": caps, "permitted": caps,
                "inheritable": caps, "ambient": ["CAP_NET_BIND_SERVICE"],
            });
            s["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        }),
        row("user-groups", |s| {
            s["process"]["user"] =
                json!({"uid": 1000, "gid": 1001, "additionalGids": [10, 20, 1002]});
        }),
        row("rlimits", |s| {
            s["process"]["rlimits"] = json!([
                {"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512},
                {"type": "RLIMIT_NPROC", "soft": 100, "hard": 200},
                {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
            ]);
        }),
        row("umask", |s| s["process"]["user"]["umask"] = json!(0o027)),
        row("oom-score-adj", |s| {
            s["process"]["oomScoreAdj"] = json!(123)
        }),
        row("cwd-env", |s| {
            s["process"]["cwd"] = json!("/tmp");
            s["process"]["env"] = json!(["PATH=/bin", "PARITY=one two", "HOME=/root"]);
        }),
        row("no-home", |s| {
            s["process"]["user"] = json!({"uid": 1000, "gid": 1000})
        }),
        row("personality", |s| {
            s["linux"]["personality"] = json!({"domain": "LINUX32"})
        }),
        row("scheduler", |s| {
            s["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5})
        }),
        row("io-priority", |s| {
            s["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6})
        }),
        row("sysctl", |s| {
            s["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"})
        }),
        row("user-namespace", |s| {
            s["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            s["linux"]["uidMappings"] = map.clone();
            s["linux"]["gidMappings"] = map;
        }),
        row("devices", try_a_device),
        // The same device allowed by a rule: what the probe says of an allowed one.
        row("devices-allowed", |s| {
            try_a_device(s);
            s["linux"]["resources"]["devices"]
                .as_array_mut()
                .unwrap()
                .push(json!({"allow": true, "type": "b", "major": 7, "minor": 0, "access": "rwm"}));
        }),
        row("selinux-label", |s| {
            s["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0")
        }),
        row("apparmor-profile", |s| {
            s["process"]["apparmorProfile"] = json!("parity-unloaded")
        }),
    ]
}

#[test]
fn process_settings_agree_with_runc_for_init_and_exec() {
    compare(&process_table(), runc_1_1_differs);
}

fn mount_table() -> Vec<Variant> {
    vec![
        row("readonly-root-masked-paths", |s| {
            s["root"]["readonly"] = json!(true);
            s["linux"]["maskedPaths"] = json!([
                "/proc/kcore",
                "/proc/keys",
                "/proc/timer_list",
                "/sys/firmware",
                "/proc/scsi",
                "/no/such/path"
            ]);
            s["linux"]["readonlyPaths"] = json!([
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger"
            ]);
        }),
        row("rootfs-rprivate", |s| {
            s["linux"]["rootfsPropagation"] = json!("rprivate")
        }),
        row("rootfs-rslave", |s| {
            s["linux"]["rootfsPropagation"] = json!("rslave")
        }),
        row("rootfs-rshared", |s| {
            s["linux"]["rootfsPropagation"] = json!("rshared")
        }),
        row("rootfs-shared", |s| {
            s["linux"]["rootfsPropagation"] = json!("shared")
        }),
    ]
}

/// A row of the table: a spec variant that every runtime must run alike.
fn row(name: &'static str, spec: fn(&mut Value)) -> Variant {
    Variant {
        name,
        spec,
        refused: None,
        volume: None,
    }
}

/// A volume on /mnt/vol with these options, the process allowed to mount.
fn volume(name: &'static str, options: &'static [&'static str], spec: fn(&mut Value)) -> Variant {
    Variant {
        name,
        spec,
        refused: None,
        volume: Some(options),
    }
}

fn with_sys_admin(s: &mut Value) {
    set_caps(s, &["CAP_SYS_ADMIN", "CAP_KILL"]);
}

fn volume_table() -> Vec<Variant> {
    vec![
        volume("vol-rbind", &["rbind"], with_sys_admin),
        // What containerd's CRI makes of a Bidirectional mount...
        volume("vol-rshared", &["rbind", "rshared"], |s| {
            with_sys_admin(s);
            s["linux"]["rootfsPropagation"] = json!("rshared");
        }),
        // ... and of a HostToContainer one.
        volume("vol-rslave", &["rbind", "rslave"], |s| {
            with_sys_admin(s);
            s["linux"]["rootfsPropagation"] = json!("rslave");
        }),
        volume(
            "vol-rshared-option-alone",
            &["rbind", "rshared"],
            with_sys_admin,
        ),
        volume("vol-rprivate", &["rbind", "rprivate"], with_sys_admin),
        volume("vol-shared", &["bind", "shared"], with_sys_admin),
        volume("vol-ro", &["rbind", "ro"], with_sys_admin),
        volume("vol-rro", &["rbind", "rro"], with_sys_admin),
        volume(
            "vol-rro-rnoexec",
            &["rbind", "ro", "rro", "rnoexec", "rnosuid"],
            with_sys_admin,
        ),
    ]
}

#[test]
fn volumes_agree_with_runc_for_init_and_exec() {
    compare(&volume_table(), runc_1_1_differs);
}

#[test]
fn mounts_agree_with_runc_for_init_and_exec() {
    compare(&mount_table(), runc_1_1_differs);
}
