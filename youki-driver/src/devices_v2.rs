//! A container's device rules on a cgroup v2 host: a BPF_CGROUP_DEVICE program attached
//! to its cgroup, as runc attaches one. libcgroups builds its program only with the
//! `cgroupsv2_devices` feature (libbpf), which this build leaves out; without a program
//! a container on cgroup v2 could make and open any device node (a host's disk) its
//! capabilities let it. The rules are libcgroups' own, in its order, as it applies them
//! on cgroup v1: the spec's `linux.resources.devices`, then the devices libcontainer
//! creates (null, zero, full, tty, urandom, random) and the ones it always allows (mknod
//! of any device, the console, ptys, /dev/ptmx, tun); the last rule that matches an
//! access decides, a type `a` rule starts the list again with its verdict as the default.

use serde_json::Value;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// One rule: device type (b or c), major and minor (None for any), access bits.
#[derive(Debug, Clone, PartialEq)]
struct Rule {
    block: bool,
    major: Option<u32>,
    minor: Option<u32>,
    access: u32,
    allow: bool,
}

// The program's context (struct bpf_cgroup_dev_ctx) and verdicts, from linux/bpf.h.
const DEV_BLOCK: u32 = 1;
const DEV_CHAR: u32 = 2;
const ACC_MKNOD: u32 = 1;
const ACC_READ: u32 = 2;
const ACC_WRITE: u32 = 4;

/// The rules a container gets, and whether an access no rule matches is allowed.
fn rules(spec_rules: &Value) -> Result<(Vec<Rule>, bool), String> {
    let mut list = Vec::new();
    let mut default_allow = false;
    let given = spec_rules.as_array().into_iter().flatten();
    let defaults = DEFAULT_RULES.iter().map(|(t, major, minor, access)| {
        serde_json::json!({"allow": true, "type": t, "major": major, "minor": minor, "access": access})
    });
    for rule in given.cloned().chain(defaults) {
        let allow = rule["allow"].as_bool().unwrap_or(false);
        let access = access_bits(rule["access"].as_str())?;
        match rule["type"].as_str().unwrap_or("a") {
            "a" => {
                default_allow = allow;
                list.clear();
            }
            _ if access == 0 => {}
            t @ ("b" | "c") => list.push(Rule {
                block: t == "b",
                major: number(&rule["major"]),
                minor: number(&rule["minor"]),
                access,
                allow,
            }),
            other => return Err(format!("device rule of type {other:?}: not supported")),
        }
    }
    Ok((list, default_allow))
}

/// libcgroups' defaults: (type, major, minor, access), -1 for any.
const DEFAULT_RULES: &[(&str, i64, i64, &str)] = &[
    ("c", 1, 3, "rwm"),
    ("c", 1, 5, "rwm"),
    ("c", 1, 7, "rwm"),
    ("c", 5, 0, "rwm"),
    ("c", 1, 9, "rwm"),
    ("c", 1, 8, "rwm"),
    ("c", -1, -1, "m"),
    ("b", -1, -1, "m"),
    ("c", 5, 1, "rwm"),
    ("c", 136, -1, "rwm"),
    ("c", 5, 2, "rwm"),
    ("c", 10, 200, "rwm"),
];

/// A major or minor number; absent or negative is any.
fn number(v: &Value) -> Option<u32> {
    v.as_i64().filter(|n| *n >= 0).map(|n| n as u32)
}

fn access_bits(access: Option<&str>) -> Result<u32, String> {
    let mut bits = 0;
    for c in access.unwrap_or("").chars() {
        bits |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => {
                return Err(format!(
                    "device rule access {access:?}: {c:?} is not r, w or m"
                ))
            }
        };
    }
    Ok(bits)
}

/// One eBPF instruction, as the kernel reads them (struct bpf_insn).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Insn {
    code: u8,
    dst: u8,
    src: u8,
    off: i16,
    imm: i32,
}

impl Insn {
    fn bytes(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = (self.src << 4) | (self.dst & 0x0f);
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }
}

// The opcodes the program uses (32-bit ALU, memory load, jumps).
const LDX_W: u8 = 0x61;
const AND_K: u8 = 0x54;
const RSH_K: u8 = 0x74;
const MOV_K: u8 = 0xb4;
const MOV_X: u8 = 0xbc;
const JNE_K: u8 = 0x55;
const JNE_X: u8 = 0x5d;
const EXIT: u8 = 0x95;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        dst,
        src,
        off,
        imm,
    }
}

/// The program: r2 = type, r3 = access, r4 = major, r5 = minor; each rule, last first,
/// returns its verdict when it matches; else the default.
fn program(rules: &[Rule], default_allow: bool) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        let all_access = rule.access == ACC_READ | ACC_WRITE | ACC_MKNOD;
        // The checks, each jumping past the rule (its verdict: two instructions) on a miss.
        let mut checks = vec![insn(
            JNE_K,
            2,
            0,
            0,
            if rule.block { DEV_BLOCK } else { DEV_CHAR } as i32,
        )];
        if !all_access {
            checks.push(insn(MOV_X, 1, 3, 0, 0));
            checks.push(insn(AND_K, 1, 0, 0, rule.access as i32));
            checks.push(insn(JNE_X, 1, 3, 0, 0));
        }
        if let Some(major) = rule.major {
            checks.push(insn(JNE_K, 4, 0, 0, major as i32));
        }
        if let Some(minor) = rule.minor {
            checks.push(insn(JNE_K, 5, 0, 0, minor as i32));
        }
        let n = checks.len();
        for (i, c) in checks.iter_mut().enumerate() {
            if c.code == JNE_K || c.code == JNE_X {
                c.off = (n - i - 1 + 2) as i16;
            }
        }
        p.extend(checks);
        p.push(insn(MOV_K, 0, 0, 0, rule.allow as i32));
        p.push(insn(EXIT, 0, 0, 0, 0));
    }
    p.push(insn(MOV_K, 0, 0, 0, default_allow as i32));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

/// Whether the rules can be made into a program, for a refusal before any fork.
pub(crate) fn check(spec_rules: &Value) -> Result<(), String> {
    rules(spec_rules).map(drop)
}

/// The cgroup v2 directory of process `pid`, on a cgroup v2 host; None elsewhere (the
/// v1 devices controller holds the rules there).
pub(crate) fn cgroup_of(pid: i32) -> Option<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    if !root.join("cgroup.controllers").exists() {
        return None;
    }
    let groups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path = groups.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(root.join(path.trim_start_matches('/')))
}

/// Attaches the program of `spec_rules` (the spec's `linux.resources.devices`) to `cgroup`.
pub(crate) fn apply(cgroup: &Path, spec_rules: &Value) -> Result<(), String> {
    let (rules, default_allow) = rules(spec_rules)?;
    let code: Vec<u8> = program(&rules, default_allow)
        .iter()
        .flat_map(|i| i.bytes())
        .collect();
    let prog = load(&code).map_err(|e| format!("loading the device rules' BPF program: {e}"))?;
    let dir =
        std::fs::File::open(cgroup).map_err(|e| format!("the cgroup {}: {e}", cgroup.display()))?;
    attach(&prog, &dir).map_err(|e| {
        format!(
            "attaching the device rules' BPF program to {}: {e}",
            cgroup.display()
        )
    })
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The head of union bpf_attr for BPF_PROG_LOAD; the rest stays zero.
#[repr(C, align(8))]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    rest: [u8; 56],
}

/// The head of union bpf_attr for BPF_PROG_ATTACH; the rest stays zero.
#[repr(C, align(8))]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    rest: [u8; 112],
}

fn load(code: &[u8]) -> io::Result<OwnedFd> {
    let license = c"Apache";
    let mut name = [0u8; 16];
    name[..12].copy_from_slice(b"skiff_device");
    let attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: (code.len() / 8) as u32,
        insns: code.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
        prog_name: name,
        prog_ifindex: 0,
        expected_attach_type: BPF_CGROUP_DEVICE,
        rest: [0; 56],
    };
    // The program and license `attr` points to outlive the call.
    let fd = bpf(BPF_PROG_LOAD, &attr)?;
    // SAFETY: a new fd bpf(2) returned, owned from here.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// bpf(2) with `attr`, the head of a union bpf_attr whose tail is zero.
fn bpf<T>(cmd: libc::c_long, attr: &T) -> io::Result<libc::c_long> {
    // SAFETY: bpf(2) reads size_of::<T>() bytes of `attr`, which lives across the call;
    // whatever it points to is the caller's to keep alive.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *const T,
            std::mem::size_of::<T>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc)
}

fn attach(prog: &OwnedFd, cgroup: &std::fs::File) -> io::Result<()> {
    let attr = ProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        rest: [0; 112],
    };
    bpf(BPF_PROG_ATTACH, &attr).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Runs the program on one access, as the kernel would: what it returns.
    fn run(p: &[Insn], block: bool, major: u32, minor: u32, access: u32) -> bool {
        let ctx = [
            (access << 16) | if block { DEV_BLOCK } else { DEV_CHAR },
            major,
            minor,
        ];
        let mut r = [0u32; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (d, s) = (i.dst as usize, i.src as usize);
            pc += 1;
            match i.code {
                LDX_W => r[d] = ctx[i.off as usize / 4],
                AND_K => r[d] &= i.imm as u32,
                RSH_K => r[d] >>= i.imm,
                MOV_K => r[d] = i.imm as u32,
                MOV_X => r[d] = r[s],
                JNE_K if r[d] != i.imm as u32 => pc += i.off as usize,
                JNE_X if r[d] != r[s] => pc += i.off as usize,
                JNE_K | JNE_X => {}
                EXIT => return r[0] == 1,
                other => panic!("opcode {other:#x}"),
            }
        }
    }

    fn program_of(spec: Value) -> Vec<Insn> {
        let (rules, default_allow) = rules(&spec).unwrap();
        program(&rules, default_allow)
    }

    const RWM: u32 = ACC_READ | ACC_WRITE | ACC_MKNOD;

    #[test]
    fn deny_all_then_the_defaults() {
        let p = program_of(json!([{"allow": false, "access": "rwm"}]));
        assert!(run(&p, false, 1, 3, ACC_READ | ACC_WRITE), "/dev/null");
        assert!(run(&p, false, 136, 7, RWM), "a pty");
        assert!(run(&p, true, 254, 0, ACC_MKNOD), "mknod of any device");
        assert!(!run(&p, true, 254, 0, ACC_READ), "a disk");
        assert!(!run(&p, false, 1, 1, ACC_READ), "/dev/mem");
        assert!(!run(&p, true, 7, 0, ACC_READ | ACC_WRITE), "a loop device");
    }

    #[test]
    fn the_last_matching_rule_decides() {
        let p = program_of(json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "b", "major": 7, "access": "rw"},
            {"allow": false, "type": "b", "major": 7, "minor": 1, "access": "w"},
        ]));
        assert!(run(&p, true, 7, 0, ACC_READ | ACC_WRITE));
        assert!(run(&p, true, 7, 1, ACC_READ));
        assert!(!run(&p, true, 7, 1, ACC_WRITE));
        assert!(!run(&p, true, 8, 0, ACC_READ));
    }

    #[test]
    fn an_allow_all_rule_opens_everything_until_a_deny() {
        let p = program_of(json!([
            {"allow": true, "access": "rwm"},
            {"allow": false, "type": "c", "major": 1, "minor": 1, "access": "rwm"},
        ]));
        assert!(run(&p, true, 254, 0, ACC_READ));
        assert!(!run(&p, false, 1, 1, ACC_READ));
    }

    #[test]
    fn bad_rules_are_refused_with_the_reason() {
        let err = rules(&json!([{"allow": true, "type": "c", "access": "rx"}])).unwrap_err();
        assert!(err.contains("'x'"), "{err}");
        let err = rules(&json!([{"allow": true, "type": "p", "access": "r"}])).unwrap_err();
        assert!(err.contains("\"p\""), "{err}");
    }

    #[test]
    fn instructions_are_encoded_as_the_kernel_reads_them() {
        assert_eq!(
            insn(LDX_W, 4, 1, 4, 0).bytes(),
            [0x61, 0x14, 4, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            insn(JNE_K, 2, 0, 3, 2).bytes(),
            [0x55, 0x02, 3, 0, 2, 0, 0, 0]
        );
    }
}
