//! fstab-style mount options (`ro`, `rbind`, `nosuid`, `rprivate`, `lowerdir=...`) as
//! mount(2) takes them: flags to set, a propagation change, and the data string; and the
//! id mapping containerd 2.x asks for with `uidmap=` and `gidmap=`, which is no option of
//! any filesystem (see [`crate::idmapped`]).

use crate::idmap::IdMapping;
use nix::mount::MsFlags;

/// What a list of options asks of mount(2).
#[derive(Debug, PartialEq, Eq)]
pub struct MountOptions {
    pub flags: MsFlags,
    /// Propagation (private, shared, slave, unbindable), set by a mount of its own.
    pub propagation: MsFlags,
    /// Everything else, for the filesystem (joined with commas).
    pub data: Vec<String>,
    /// The values of `uidmap=` and `gidmap=`, if given.
    pub uidmap: Option<String>,
    pub gidmap: Option<String>,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            propagation: MsFlags::empty(),
            data: Vec::new(),
            uidmap: None,
            gidmap: None,
        }
    }
}

impl MountOptions {
    /// Whether the mount is to be read-only.
    pub fn read_only(&self) -> bool {
        self.flags.contains(MsFlags::MS_RDONLY)
    }

    /// The id mapping asked for, if `uidmap=` or `gidmap=` is given (an error unless
    /// both are, and well formed).
    pub fn id_mapping(&self) -> Option<Result<IdMapping, String>> {
        if self.uidmap.is_none() && self.gidmap.is_none() {
            return None;
        }
        Some(IdMapping::parse(
            self.uidmap.as_deref(),
            self.gidmap.as_deref(),
        ))
    }

    pub fn parse(options: &[String]) -> MountOptions {
        let mut out = MountOptions::default();
        for opt in options {
            if let Some((flag, clear)) = flag(opt) {
                out.flags.set(flag, !clear);
            } else if let Some(propagation) = propagation(opt) {
                out.propagation |= propagation;
            } else if let Some(map) = opt.strip_prefix("uidmap=") {
                out.uidmap = Some(map.to_string());
            } else if let Some(map) = opt.strip_prefix("gidmap=") {
                out.gidmap = Some(map.to_string());
            } else if opt != "defaults" {
                out.data.push(opt.clone());
            }
        }
        out
    }
}

/// The flag an option sets, or clears (`rw` clears what `ro` sets).
fn flag(opt: &str) -> Option<(MsFlags, bool)> {
    use MsFlags as F;
    Some(match opt {
        "ro" => (F::MS_RDONLY, false),
        "rw" => (F::MS_RDONLY, true),
        "nosuid" => (F::MS_NOSUID, false),
        "suid" => (F::MS_NOSUID, true),
        "nodev" => (F::MS_NODEV, false),
        "dev" => (F::MS_NODEV, true),
        "noexec" => (F::MS_NOEXEC, false),
        "exec" => (F::MS_NOEXEC, true),
        "sync" => (F::MS_SYNCHRONOUS, false),
        "async" => (F::MS_SYNCHRONOUS, true),
        "dirsync" => (F::MS_DIRSYNC, false),
        "remount" => (F::MS_REMOUNT, false),
        "mand" => (F::MS_MANDLOCK, false),
        "nomand" => (F::MS_MANDLOCK, true),
        "noatime" => (F::MS_NOATIME, false),
        "atime" => (F::MS_NOATIME, true),
        "nodiratime" => (F::MS_NODIRATIME, false),
        "diratime" => (F::MS_NODIRATIME, true),
        "bind" => (F::MS_BIND, false),
        "rbind" => (F::MS_BIND | F::MS_REC, false),
        "relatime" => (F::MS_RELATIME, false),
        "norelatime" => (F::MS_RELATIME, true),
        "strictatime" => (F::MS_STRICTATIME, false),
        "nostrictatime" => (F::MS_STRICTATIME, true),
        _ => return None,
    })
}

fn propagation(opt: &str) -> Option<MsFlags> {
    use MsFlags as F;
    Some(match opt {
        "private" => F::MS_PRIVATE,
        "rprivate" => F::MS_PRIVATE | F::MS_REC,
        "shared" => F::MS_SHARED,
        "rshared" => F::MS_SHARED | F::MS_REC,
        "slave" => F::MS_SLAVE,
        "rslave" => F::MS_SLAVE | F::MS_REC,
        "unbindable" => F::MS_UNBINDABLE,
        "runbindable" => F::MS_UNBINDABLE | F::MS_REC,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &[&str]) -> MountOptions {
        MountOptions::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn overlay_options_become_data() {
        let o = parse(&[
            "index=off",
            "workdir=/w",
            "upperdir=/u",
            "lowerdir=/l1:/l2",
            "ro",
        ]);
        assert_eq!(o.flags, MsFlags::MS_RDONLY);
        assert_eq!(
            o.data.join(","),
            "index=off,workdir=/w,upperdir=/u,lowerdir=/l1:/l2"
        );
    }

    #[test]
    fn id_mappings_are_no_filesystem_data() {
        let o = parse(&["uidmap=0:1000:10", "gidmap=0:2000:10", "lowerdir=/l", "ro"]);
        assert_eq!(o.data, vec!["lowerdir=/l".to_string()]);
        let m = o.id_mapping().unwrap().unwrap();
        assert_eq!((m.uids[0].host, m.gids[0].host), (1000, 2000));
        assert!(parse(&["lowerdir=/l"]).id_mapping().is_none());
        assert!(parse(&["uidmap=0:1000:10"]).id_mapping().unwrap().is_err());
    }

    #[test]
    fn flags_set_and_clear() {
        let o = parse(&["rbind", "ro", "nosuid", "rprivate", "defaults"]);
        assert_eq!(
            o.flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID
        );
        assert_eq!(o.propagation, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        assert!(o.data.is_empty());
        assert_eq!(parse(&["ro", "rw"]).flags, MsFlags::empty());
    }
}
