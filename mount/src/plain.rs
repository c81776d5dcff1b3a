//! One mount(2) of a `Mount` as its options say (a bind mount is remounted for its
//! read-only flag), and the error context every mount error carries.

use crate::long_overlay::{self, MAX_DATA};
use crate::options::MountOptions;
use nix::mount::{MntFlags, MsFlags};
use skiff_protos::mount::Mount;
use std::io;
use std::path::Path;

/// One mount(2) of `m` with `opts`' flags and data; a bind mount is remounted
/// read-only if asked; an overlay whose options do not fit one mount(2) is mounted by
/// [`long_overlay`].
pub(crate) fn plain_mount(m: &Mount, opts: &MountOptions, target: &Path) -> io::Result<()> {
    let data = opts.data.join(",");
    if m.type_ == "overlay" && data.len() > MAX_DATA {
        let options: Vec<&str> = opts.data.iter().map(String::as_str).collect();
        return long_overlay::mount(&options, opts.flags, target).map_err(|e| {
            let layers = options
                .iter()
                .find_map(|o| o.strip_prefix("lowerdir="))
                .map_or(0, |l| l.split(':').count());
            context(
                e,
                format!("mount overlay of {layers} layers on {}", target.display()),
            )
        });
    }
    let bind = opts.flags.contains(MsFlags::MS_BIND);
    let fstype = (!bind).then_some(m.type_.as_str());
    // A bind mount takes most flags only when it is remounted with them.
    let first = match bind {
        true => opts.flags - MsFlags::MS_RDONLY,
        false => opts.flags,
    };
    sys_mount(Some(&m.source), target, fstype, first, &data).map_err(|e| {
        context(
            e,
            format!("mount {} {:?} on {}", m.type_, m.source, target.display()),
        )
    })?;
    if bind && opts.flags.contains(MsFlags::MS_RDONLY) {
        sys_mount(None, target, None, opts.flags | MsFlags::MS_REMOUNT, "").map_err(|e| {
            let _ = nix::mount::umount2(target, MntFlags::MNT_DETACH);
            context(e, format!("remount read-only {}", target.display()))
        })?;
    }
    Ok(())
}

pub(crate) fn sys_mount(
    source: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: &str,
) -> io::Result<()> {
    let data = (!data.is_empty()).then_some(data);
    Ok(nix::mount::mount(source, target, fstype, flags, data)?)
}

pub(crate) fn context(e: io::Error, what: String) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}
